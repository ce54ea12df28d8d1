"""Scored results of evaluation jobs, as every family writes them: per-question predictions with every metric,
per-context costs, a job summary; reading the summaries back; and the numbers and tables of the families' Markdown
reports. Each family's tables are its `ga.eval.<family>.results`.

Means are over scored questions (those with at least one reference); questions without references are answered,
kept in predictions.parquet with outcome `no_references` and no scores, and counted in the summary. Scores are
percentages (100 x the mean over questions), as the paper reports them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

METRICS = ("f1", "em", "f1_shortest", "em_shortest", "rouge_l_recall")
"""Columns of every scored question (ga.eval.metrics.score): F1 / EM against all references (max, the standard),
the authors' variant against the single shortest reference, ROUGE-L recall."""
ANSWERED = "answered"
NO_REFERENCES = "no_references"
COST_COLUMNS = (
    "contextualize_flops",
    "contextualize_seconds",
    "per_query_flops",
    "per_query_seconds",
    "peak_memory_mb",
    "storage_floats",
)
"""Per-context cost columns (ga.eval.runner); the summary gives the mean over contexts."""
PREDICTIONS_FILE, COSTS_FILE, SUMMARY_FILE = "predictions.parquet", "costs.parquet", "summary.json"


Scorer = Callable[[str, Sequence[str]], dict]
"""(prediction, references) -> {metric: value in [0, 1]} (`ga.eval.metrics.score`, `accuracy_score`)."""


def score_rows(rows: Sequence[dict], scorer: Scorer | None = None, metrics: Sequence[str] = METRICS) -> list[dict]:
    """Each runner row with every metric added (None where the question has no references or was not answered).
    scorer: None for the knowledge-QA metrics (`ga.eval.metrics.score`); `metrics` are the keys it returns."""
    from ga.eval.metrics import score

    scorer = score if scorer is None else scorer
    scored = []
    for row in rows:
        values = dict.fromkeys(metrics)
        if row["outcome"] == ANSWERED and row["references"]:
            values = scorer(row["prediction"] or "", row["references"])
        scored.append({**row, **values})
    return scored


def summarize(scored: Sequence[dict], costs: Sequence[dict], job: dict, metrics: Sequence[str] = METRICS) -> dict:
    """One job's summary: the job, its counts by outcome, mean scores (percent) and mean costs per context."""
    counted = [row for row in scored if row[metrics[0]] is not None]
    summary = {
        **job,
        "questions": len(scored),
        "scored": len(counted),
        "outcomes": dict(sorted(Counter(row["outcome"] for row in scored).items())),
    }
    for metric in metrics:
        summary[metric] = 100 * sum(row[metric] for row in counted) / len(counted) if counted else None
    for column in COST_COLUMNS:
        values = [cost[column] for cost in costs if cost.get(column) is not None]
        summary[column] = sum(values) / len(values) if values else None
    tokens = [cost["context_tokens"] for cost in costs if cost.get("context_tokens") is not None]
    summary["context_tokens"] = sum(tokens) / len(tokens) if tokens else None
    return summary


def write_results(
    rows: Sequence[dict],
    costs: Sequence[dict],
    folder: str | Path,
    job: dict,
    scorer: Scorer | None = None,
    metrics: Sequence[str] = METRICS,
) -> dict:
    """Score `rows` (with `scorer`, see `score_rows`), write predictions.parquet, costs.parquet and summary.json
    into `folder` (atomically)."""
    import polars as pl

    from ga.io import atomic_dir, write_json

    scored = score_rows(rows, scorer, metrics)
    summary = summarize(scored, costs, job, metrics)
    with atomic_dir(folder) as tmp:
        pl.DataFrame([_flat(row) for row in scored], infer_schema_length=None).write_parquet(tmp / PREDICTIONS_FILE)
        pl.DataFrame([_flat(cost) for cost in costs], infer_schema_length=None).write_parquet(tmp / COSTS_FILE)
        write_json(summary, tmp / SUMMARY_FILE, sort_keys=False)
    return summary


def say_failures(summary: dict, job: str, folder: str | Path) -> None:
    """One stderr line when questions of a job failed: they are recorded per question (predictions.parquet, column
    `error`) and counted in the summary; said here too, so that they are seen."""
    import sys

    failed = {outcome: n for outcome, n in summary["outcomes"].items() if outcome.endswith("failed")}
    if failed:
        print(f"{job}: {failed} (see the error column of {Path(folder) / PREDICTIONS_FILE})", file=sys.stderr)


def _flat(row: dict) -> dict:
    """A row with its free-form mappings (`notes`) as JSON strings: one Parquet schema for every method."""
    import json

    return {key: json.dumps(value, sort_keys=True) if isinstance(value, dict) else value for key, value in row.items()}


def read_summaries(folders: Sequence[str | Path]) -> list[dict]:
    from ga.io import read_json

    return [read_json(Path(folder) / SUMMARY_FILE) for folder in folders]


# ---------------------------------------------------------------- Markdown reports
def format_number(value, digits: int = 1, tiny: bool = False) -> str:
    """A table cell: "-" for None, large floats (>= 1e5) in 3 significant digits, other floats with `digits`
    decimals; tiny=True also writes floats that would round to 0 (0 < |value| < 10^-digits) in 3 significant
    digits."""
    if value is None:
        return "-"
    if isinstance(value, float) and (abs(value) >= 1e5 or (tiny and 0 < abs(value) < 10**-digits)):
        return f"{value:.3g}"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown_report(title: str, intro: str, header: str, rows: Sequence[Sequence[str]]) -> str:
    """A report of one table: the title, a paragraph, the table (`header`: its "| a | b |" line; `rows`: the cells
    of each row)."""
    lines = [f"# {title}", "", intro, "", header, "|" + "---|" * (header.count("|") - 1)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines) + "\n"
