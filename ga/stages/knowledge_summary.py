"""Stage knowledge_summary: every knowledge_eval job of the run in one table (benchmark x method x length: scores,
counts, costs), beside the paper's published F1 where the run's base model is one the paper evaluated."""

from __future__ import annotations

from ga.stages import Stage

STAGE = Stage(
    name="knowledge_summary",
    summary="collect every knowledge-QA job into one table beside the paper's numbers",
    inputs={"results": "knowledge_eval result folders"},
    outputs={"table": "summary Parquet file to write", "markdown": "summary Markdown file to write"},
    many=("results",),
)


def depends_on(config) -> dict:
    from ga.eval.knowledge.jobs import summary_depends_on

    return summary_depends_on(config)


def run(config, inputs, outputs) -> dict:
    from ga.eval.knowledge.jobs import collect_results

    return collect_results(config, inputs.results, outputs.table, outputs.markdown)
