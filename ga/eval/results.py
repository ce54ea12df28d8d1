"""Scored results of knowledge-QA jobs: per-question predictions with every metric, per-context costs, a job
summary, and the table of all jobs beside the paper's published numbers.

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
COST_COLUMNS = ("contextualize_flops", "contextualize_seconds", "per_query_flops", "per_query_seconds",
                "peak_memory_mb", "storage_floats")
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
    summary = {**job, "questions": len(scored), "scored": len(counted),
               "outcomes": dict(sorted(Counter(row["outcome"] for row in scored).items()))}
    for metric in metrics:
        summary[metric] = 100 * sum(row[metric] for row in counted) / len(counted) if counted else None
    for column in COST_COLUMNS:
        values = [cost[column] for cost in costs if cost.get(column) is not None]
        summary[column] = sum(values) / len(values) if values else None
    tokens = [cost["context_tokens"] for cost in costs if cost.get("context_tokens") is not None]
    summary["context_tokens"] = sum(tokens) / len(tokens) if tokens else None
    return summary


def write_results(rows: Sequence[dict], costs: Sequence[dict], folder: str | Path, job: dict,
                  scorer: Scorer | None = None, metrics: Sequence[str] = METRICS) -> dict:
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


# ---------------------------------------------------------------- the table of all jobs
TABLE_COLUMNS = ("benchmark", "method", "length", *METRICS, "questions", "scored", "contexts_evaluated",
                 "contexts_available", "context_tokens", *COST_COLUMNS)
PAPER_COLUMN = "paper_f1_shortest"
"""The paper's published F1, set beside our `f1_shortest`: the authors scored against the single shortest
reference, so that is the like-for-like column."""


def read_summaries(folders: Sequence[str | Path]) -> list[dict]:
    from ga.io import read_json

    return [read_json(Path(folder) / SUMMARY_FILE) for folder in folders]


def summary_table(summaries: Sequence[dict], paper=None, paper_model: str | None = None):
    """All jobs, one row each (benchmark, method, length order), with the paper's F1 for `paper_model` beside them
    where the paper has the cell (a length-independent baseline's number on every length)."""
    import polars as pl

    rows = [{column: summary.get(column) for column in TABLE_COLUMNS} for summary in summaries]
    table = pl.DataFrame(rows, infer_schema_length=None).sort("benchmark", "method", "length")
    published = {}
    if paper is not None and paper_model is not None:
        for cell in paper.filter(pl.col("model") == paper_model).iter_rows(named=True):
            published[(cell["benchmark"], cell["method"], cell["length"])] = cell["f1"]
    column = [published.get((row["benchmark"], row["method"], row["length"]),
                            published.get((row["benchmark"], row["method"], None)))
              for row in table.iter_rows(named=True)]
    return table.with_columns(pl.Series(PAPER_COLUMN, column, dtype=pl.Float64))


def _number(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and abs(value) >= 1e5:
        return f"{value:.3g}"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown_table(table, title: str) -> str:
    """The table for people: scores in percent, costs per context / per query."""
    header = ("| benchmark | method | k | F1 | EM | F1 (shortest ref) | paper F1 (shortest ref) | ROUGE-L R | "
              "questions | contexts | context FLOPs | query FLOPs | query s | peak MB | storage floats |")
    lines = [f"# {title}", "",
             "Scores are percentages over the scored questions. F1 / EM take the max over all references (the "
             "standard SQuAD scoring); `F1 (shortest ref)` scores against the single shortest reference, as the "
             "paper's authors did, so the paper's published F1 stands beside that column. Costs are means: "
             "contextualization FLOPs per context, FLOPs and seconds per query, peak memory per job phase, floats "
             "stored per context.", "", header, "|" + "---|" * (header.count("|") - 1)]
    for row in table.iter_rows(named=True):
        contexts = f"{row['contexts_evaluated']}/{row['contexts_available']}"
        lines.append("| " + " | ".join([
            row["benchmark"], row["method"], str(row["length"]), _number(row["f1"]), _number(row["em"]),
            _number(row["f1_shortest"]), _number(row[PAPER_COLUMN]), _number(row["rouge_l_recall"]),
            f"{row['scored']}/{row['questions']}", contexts, _number(row["contextualize_flops"]),
            _number(row["per_query_flops"]), _number(row["per_query_seconds"], 3), _number(row["peak_memory_mb"], 0),
            _number(row["storage_floats"], 0)]) + " |")
    return "\n".join(lines) + "\n"
