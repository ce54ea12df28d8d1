"""The in-context-learning results of every job in three tables and one Markdown report (docs/method.md#in-context-
learning):

  jobs.parquet      one row per job (benchmark, method, task, kind, k, seed): accuracy (percent), counts, costs
  tasks.parquet     per benchmark, method, task and k: accuracy averaged over the seeds evaluated (`seeds`), with
                    its standard deviation over seeds
  averages.parquet  per benchmark, method and k: the mean over tasks of the per-task accuracy, for all tasks and
                    for each kind (MetaICL: classification / multichoice; the twin: classification / generation),
                    with the number of tasks averaged
  summary.md        the averages by k and the per-task accuracies, one table each per benchmark

zero_shot has k = 0 (one job per task). A job whose queries all failed has no accuracy and is left out of the means
(its outcomes are in jobs.parquet).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ga.eval.results import COST_COLUMNS, format_number

JOB_COLUMNS = (
    "benchmark",
    "method",
    "task",
    "kind",
    "k",
    "seed",
    "accuracy",
    "questions",
    "scored",
    "k_drawn",
    "train_overlapping_test",
    "test_evaluated",
    "test_available",
    "max_test_examples",
    "validation_seed",
    *COST_COLUMNS,
)
ALL_TASKS = "all"
JOBS_FILE, TASKS_FILE, AVERAGES_FILE, MARKDOWN_FILE = "jobs.parquet", "tasks.parquet", "averages.parquet", "summary.md"


def job_table(summaries: Sequence[dict]):
    import polars as pl

    rows = [{column: summary.get(column) for column in JOB_COLUMNS} for summary in summaries]
    schema = {"accuracy": pl.Float64, "k": pl.Int64, "seed": pl.Int64}
    return pl.DataFrame(rows, schema_overrides=schema, infer_schema_length=None).sort(
        "benchmark", "method", "task", "k", "seed"
    )


def task_table(jobs):
    """Mean (and standard deviation) of accuracy over seeds, per benchmark, method, task and k."""
    import polars as pl

    return (
        jobs.filter(pl.col("accuracy").is_not_null())
        .group_by("benchmark", "method", "task", "kind", "k")
        .agg(
            pl.col("accuracy").mean().alias("accuracy"),
            pl.col("accuracy").std().alias("accuracy_std"),
            pl.len().alias("seeds"),
        )
        .sort("benchmark", "method", "task", "k")
    )


def average_table(tasks):
    """Mean over tasks of the per-task accuracy, per benchmark, method and k: all tasks, then each kind."""
    import polars as pl

    keys = ("benchmark", "method", "k")
    overall = tasks.group_by(*keys).agg(
        pl.lit(ALL_TASKS).alias("tasks_of"), pl.col("accuracy").mean(), pl.len().alias("tasks")
    )
    by_kind = (
        tasks.group_by(*keys, "kind")
        .agg(pl.col("accuracy").mean(), pl.len().alias("tasks"))
        .rename({"kind": "tasks_of"})
    )
    return pl.concat([overall, by_kind.select(overall.columns)]).sort(*keys, "tasks_of")


def _grid(table, row_keys: Sequence[str], ks: Sequence[int]) -> list[str]:
    lines = ["| " + " | ".join([*row_keys, *(f"k={k}" for k in ks)]) + " |", "|" + "---|" * (len(row_keys) + len(ks))]
    cells = {}
    for row in table.iter_rows(named=True):
        cells.setdefault(tuple(row[key] for key in row_keys), {})[row["k"]] = row["accuracy"]
    for key, by_k in cells.items():
        lines.append("| " + " | ".join([*map(str, key), *(format_number(by_k.get(k)) for k in ks)]) + " |")
    return lines


def markdown_report(jobs, tasks, averages, title: str) -> str:
    import polars as pl

    lines = [
        f"# {title}",
        "",
        "Accuracy in percent: case-insensitive exact match of the greedy answer (at most the configured new "
        "tokens, cut at the first newline) with the reference output. Per task: the mean over seeds; averages: "
        "the mean over tasks of those, for all tasks and for each kind. zero_shot sees no demonstrations "
        "(k = 0). A capped test set is a seeded sample of each task (see max_test_examples in jobs.parquet).",
    ]
    for benchmark in sorted(set(jobs["benchmark"].to_list())):
        ks = sorted(set(jobs.filter(pl.col("benchmark") == benchmark)["k"].to_list()))
        capped = jobs.filter((pl.col("benchmark") == benchmark) & pl.col("max_test_examples").is_not_null())
        lines += [
            "",
            f"## {benchmark}",
            "",
            f"Jobs: {jobs.filter(pl.col('benchmark') == benchmark).height}; test "
            f"sets {'capped at ' + str(capped['max_test_examples'][0]) if capped.height else 'complete'}.",
            "",
            "### Average over tasks",
            "",
        ]
        lines += _grid(
            averages.filter(pl.col("benchmark") == benchmark).sort("tasks_of", "method"), ("tasks_of", "method"), ks
        )
        lines += ["", "### Per task (mean over seeds)", ""]
        lines += _grid(
            tasks.filter(pl.col("benchmark") == benchmark).sort("kind", "task", "method"),
            ("kind", "task", "method"),
            ks,
        )
    return "\n".join(lines) + "\n"


def write_icl_summary(summaries: Sequence[dict], folder: str | Path, title: str) -> dict:
    """The three tables and the report of every job's summary, written into `folder` at once; returns counts."""
    from ga.io import atomic_dir

    jobs = job_table(summaries)
    tasks = task_table(jobs)
    averages = average_table(tasks)
    with atomic_dir(Path(folder)) as tmp:
        jobs.write_parquet(tmp / JOBS_FILE)
        tasks.write_parquet(tmp / TASKS_FILE)
        averages.write_parquet(tmp / AVERAGES_FILE)
        (tmp / MARKDOWN_FILE).write_text(markdown_report(jobs, tasks, averages, title), encoding="utf-8")
    return {"jobs": jobs.height, "task_rows": tasks.height, "average_rows": averages.height}
