"""Stage msc_summary: every msc_eval job pooled by benchmark x method into the paper's Table 1 (F1, ROUGE-L recall,
TFLOPs per query, storage per user), beside the published numbers where the base model is one the paper evaluated."""

from __future__ import annotations

from ga.stages import Stage

STAGE = Stage(
    name="msc_summary",
    summary="collect every personalization job into the paper's Table 1",
    inputs={"results": "msc_eval result folders"},
    outputs={"table": "summary Parquet file to write", "markdown": "summary Markdown file to write"},
    many=("results",),
)


def depends_on(config) -> dict:
    from ga.eval.msc.jobs import summary_depends_on

    return summary_depends_on(config)


def run(config, inputs, outputs) -> dict:
    from ga.eval.msc.jobs import collect_results

    return collect_results(config, inputs.results, outputs.table, outputs.markdown)
