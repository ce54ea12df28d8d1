"""Scored personalization results: one job's predictions, costs and summary (as knowledge QA writes them,
`ga.eval.results.write_results`), and the paper's Table 1 for the whole run: F1, inference TFLOPs per query and extra
storage per user for each method, beside the published numbers.

A method's row pools all its batches: scores are means over every scored question of every batch and costs means
over every conversation (`ga.eval.results.summarize` over the batches' rows together), so the table is what one job
over all conversations would give. Storage per user is storage per conversation (one conversation is one user's
history).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ga.data.contracts import DataError
from ga.eval.results import COSTS_FILE, PREDICTIONS_FILE, SUMMARY_FILE, format_number, markdown_report, write_results

PAPER_MSC = Path(__file__).resolve().parents[3] / "resources" / "paper" / "msc.yaml"
TERA = 10**12
JOB_KEYS = ("benchmark", "method", "encode_strategy")
"""What identifies a row of the table (a method's batches pool into one row)."""
COUNT_COLUMNS = (
    "questions",
    "scored",
    "failed",
    "conversations_evaluated",
    "conversations_available",
    "batches",
)
"""The table's integer columns (every other non-key column is a float)."""
TABLE_COLUMNS = (
    "benchmark",
    "method",
    "encode_strategy",
    "f1",
    "rouge_l_recall",
    "em",
    *COUNT_COLUMNS,
    "per_query_tflops",
    "storage_floats",
    "contextualize_tflops",
    "context_tokens",
    "per_query_seconds",
    "peak_memory_mb",
)
PAPER_COLUMNS = ("paper_f1", "paper_tflops_per_query", "paper_storage_floats")
_PAPER_KEYS = {"model", "method", "f1", "tflops_per_query", "storage_floats", "storage_at_least"}


def evaluate_conversations(method, conversations, folder: str | Path, job: dict, progress: bool = False) -> dict:
    """Contextualize every conversation with `method`, answer its questions, and write predictions.parquet,
    costs.parquet and summary.json into `folder` (atomically); returns the summary (`job` plus scores and costs)."""
    from ga.eval.runner import run_method

    rows, costs = run_method(method, conversations, progress=progress)
    return write_results(rows, costs, folder, job)


def pooled_summaries(folders: Sequence[str | Path]) -> list[dict]:
    """One summary per (benchmark, method, encode strategy): the jobs' rows and costs summarized together."""
    from ga.data.parquet import read_parquet
    from ga.eval.results import summarize
    from ga.io import read_json

    groups: dict[tuple, dict] = {}
    for folder in map(Path, folders):
        summary = read_json(folder / SUMMARY_FILE)
        key = tuple(summary.get(name) for name in JOB_KEYS)
        group = groups.setdefault(
            key,
            {
                "rows": [],
                "costs": [],
                "batches": set(),
                "evaluated": 0,
                "available": summary.get("conversations_available"),
            },
        )
        if summary.get("batch") in group["batches"]:
            raise DataError(
                str(folder / SUMMARY_FILE), None, "batch", f"batch {summary.get('batch')} of {key} is given twice"
            )
        group["batches"].add(summary.get("batch"))
        group["evaluated"] += summary.get("conversations_evaluated") or 0
        group["rows"] += read_parquet(folder / PREDICTIONS_FILE).to_dicts()
        group["costs"] += read_parquet(folder / COSTS_FILE).to_dicts()
    pooled = []
    for key, group in groups.items():
        job = {
            **dict(zip(JOB_KEYS, key)),
            "batches": len(group["batches"]),
            "conversations_evaluated": group["evaluated"],
            "conversations_available": group["available"],
        }
        pooled.append(summarize(group["rows"], group["costs"], job))
    return pooled


def _tera(value):
    return None if value is None else value / TERA


def paper_msc(path: str | Path = PAPER_MSC) -> list[dict]:
    """The published Table 1 cells (resources/paper/msc.yaml), checked."""
    from ga.eval.msc.config import METHODS
    from ga.io import read_yaml

    file = str(path)
    data = read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise DataError(file, None, None, "expected a mapping with `results` (a list)")
    cells = []
    for index, entry in enumerate(data["results"]):
        if not isinstance(entry, dict) or set(entry) != _PAPER_KEYS:
            raise DataError(file, index, None, f"expected exactly the keys {sorted(_PAPER_KEYS)}, got {entry!r}")
        if entry["method"] not in METHODS:
            raise DataError(file, index, "method", f"{entry['method']!r} is not one of {list(METHODS)}")
        for key in ("f1", "tflops_per_query", "storage_floats"):
            number = entry[key]
            if number is not None and (isinstance(number, bool) or not isinstance(number, (int, float)) or number < 0):
                raise DataError(file, index, key, f"expected a non-negative number or null, got {number!r}")
        cells.append(dict(entry))
    return cells


def summary_table(summaries: Sequence[dict], paper: Sequence[dict] | None = None, paper_model: str | None = None):
    """The paper's Table 1 for the run: one row per pooled summary (benchmark, method, strategy order), with the
    published numbers of `paper_model` beside the `msc` rows."""
    import polars as pl

    published = {cell["method"]: cell for cell in paper or () if cell["model"] == paper_model}
    rows = []
    for summary in summaries:
        failed = sum(n for outcome, n in (summary.get("outcomes") or {}).items() if outcome.endswith("failed"))
        row = {column: summary.get(column) for column in TABLE_COLUMNS}
        row.update(
            failed=failed,
            per_query_tflops=_tera(summary.get("per_query_flops")),
            contextualize_tflops=_tera(summary.get("contextualize_flops")),
        )
        cell = published.get(summary["method"]) if summary["benchmark"] == "msc" else None
        row.update(
            paper_f1=cell and cell["f1"],
            paper_tflops_per_query=cell and cell["tflops_per_query"],
            paper_storage_floats=cell and cell["storage_floats"],
        )
        rows.append(row)
    schema = {column: pl.Utf8 if column in JOB_KEYS else pl.Float64 for column in TABLE_COLUMNS + PAPER_COLUMNS}
    schema.update({column: pl.Int64 for column in COUNT_COLUMNS})
    return pl.DataFrame(rows, schema=schema).sort("benchmark", "method", "encode_strategy", nulls_last=True)


def markdown_table(table, title: str) -> str:
    header = (
        "| benchmark | method | encoding | F1 | paper F1 | ROUGE-L R | EM | TFLOPs / query | paper TFLOPs | "
        "storage / user (floats) | paper storage | questions | conversations | context tokens | query s |"
    )
    intro = (
        "The paper's Table 1 for this run. Scores are percentages over the scored questions: SQuAD-style token "
        "F1 (the paper's number) and EM, ROUGE-L recall (MemGPT's). Costs are means per conversation: "
        "inference TFLOPs per query (analytic matmul FLOPs of answering, the conversation excluded), extra "
        "floats stored per user (the adapter's LoRA factors, the conversation's KV cache for prompting), "
        "context tokens and seconds per query. The paper's numbers are Mistral-7B-Instruct's on MSC (its "
        'prompting storage is a lower bound, "128M+").'
    )

    def number(value, digits: int = 1) -> str:
        return format_number(value, digits, tiny=True)

    rows = [
        [
            row["benchmark"],
            row["method"],
            row["encode_strategy"] or "-",
            number(row["f1"]),
            number(row["paper_f1"]),
            number(row["rouge_l_recall"]),
            number(row["em"]),
            number(row["per_query_tflops"], 4),
            number(row["paper_tflops_per_query"], 3),
            number(row["storage_floats"], 0),
            number(row["paper_storage_floats"], 0),
            f"{row['scored']}/{row['questions']}",
            f"{row['conversations_evaluated']}/{row['conversations_available']}",
            number(row["context_tokens"], 0),
            number(row["per_query_seconds"], 3),
        ]
        for row in table.iter_rows(named=True)
    ]
    return markdown_report(title, intro, header, rows)
