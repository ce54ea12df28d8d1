"""Stage icl_summary: every icl_eval job of the run in tables: per job, per task and k (mean and spread over seeds),
and the averages per k over all tasks and per kind (classification / multiple choice); summary.md for people."""

from __future__ import annotations

from ga.stages import Stage

STAGE = Stage(
    name="icl_summary",
    summary="collect every in-context-learning job into tables by task, k and kind",
    inputs={"results": "icl_eval result folders"},
    outputs={"summary": "summary folder to write (jobs/tasks/averages.parquet, summary.md)"},
    many=("results",),
)


def depends_on(config) -> dict:
    return {}


def run(config, inputs, outputs) -> dict:
    from ga.eval.icl.results import write_icl_summary
    from ga.eval.results import read_summaries

    return write_icl_summary(
        read_summaries(inputs.results), outputs.summary, f"In-context learning: run `{config.run_name}`"
    )
