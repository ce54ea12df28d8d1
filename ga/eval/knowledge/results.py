"""The knowledge-QA table of all jobs (benchmark x method x length), beside the paper's published numbers, and its
Markdown report. A job's own results are written by `ga.eval.results.write_results`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ga.eval.results import COST_COLUMNS, METRICS, format_number, markdown_report

TABLE_COLUMNS = (
    "benchmark",
    "method",
    "length",
    *METRICS,
    "questions",
    "scored",
    "contexts_evaluated",
    "contexts_available",
    "context_tokens",
    *COST_COLUMNS,
)
PAPER_COLUMN = "paper_f1_shortest"
"""The paper's published F1, set beside our `f1_shortest`: the authors scored against the single shortest
reference, so that is the like-for-like column."""


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
    column = [
        published.get(
            (row["benchmark"], row["method"], row["length"]), published.get((row["benchmark"], row["method"], None))
        )
        for row in table.iter_rows(named=True)
    ]
    return table.with_columns(pl.Series(PAPER_COLUMN, column, dtype=pl.Float64))


def markdown_table(table, title: str) -> str:
    """The table for people: scores in percent, costs per context / per query."""
    header = (
        "| benchmark | method | k | F1 | EM | F1 (shortest ref) | paper F1 (shortest ref) | ROUGE-L R | "
        "questions | contexts | context FLOPs | query FLOPs | query s | peak MB | storage floats |"
    )
    intro = (
        "Scores are percentages over the scored questions. F1 / EM take the max over all references (the "
        "standard SQuAD scoring); `F1 (shortest ref)` scores against the single shortest reference, as the "
        "paper's authors did, so the paper's published F1 stands beside that column. Costs are means: "
        "contextualization FLOPs per context, FLOPs and seconds per query, peak memory per job phase, floats "
        "stored per context."
    )
    number = format_number
    rows = [
        [
            row["benchmark"],
            row["method"],
            str(row["length"]),
            number(row["f1"]),
            number(row["em"]),
            number(row["f1_shortest"]),
            number(row[PAPER_COLUMN]),
            number(row["rouge_l_recall"]),
            f"{row['scored']}/{row['questions']}",
            f"{row['contexts_evaluated']}/{row['contexts_available']}",
            number(row["contextualize_flops"]),
            number(row["per_query_flops"]),
            number(row["per_query_seconds"], 3),
            number(row["peak_memory_mb"], 0),
            number(row["storage_floats"], 0),
        ]
        for row in table.iter_rows(named=True)
    ]
    return markdown_report(title, intro, header, rows)
