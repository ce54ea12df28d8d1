"""Stage report: one JSON and one Markdown summary of what the run produced (ga/report.py): every stage's final
outputs, the wall time and peak memory Snakemake measured for each rule, and the config."""
from __future__ import annotations

from ga.stages import Stage

STAGE = Stage(
    name="report",
    summary="summarise a pipeline run (outputs, stage timings, config)",
    inputs={"outputs": "final outputs of the stages to describe"},
    outputs={"json": "JSON summary to write", "markdown": "Markdown summary to write"},
    many=("outputs",),
)


def depends_on(config) -> dict:
    """The report shows the whole config, so any config change refreshes it (and nothing else)."""
    return config.to_dict()


def run(config, inputs, outputs) -> dict:
    from ga.io import write_json, write_text
    from ga.report import build_report, render_markdown

    report = build_report(config.run_name, config.to_dict(), [str(p) for p in inputs.outputs],
                          config.benchmarks_dir)
    write_json(report, outputs.json, sort_keys=False)
    write_text(render_markdown(report), outputs.markdown)
    return {"json": str(outputs.json), "markdown": str(outputs.markdown)}
