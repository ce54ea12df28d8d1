"""Stage report: what the run produced, for people (ga/report/): summary.json and summary.md (every stage's final
outputs, the wall time and peak memory Snakemake measured for each rule, the config), and index.html with plots/
(the DAG, data statistics, training curves, every evaluation beside the paper's numbers, costs, versions)."""

from __future__ import annotations

from ga.stages import Stage

STAGE = Stage(
    name="report",
    summary="summarise a pipeline run (outputs, data, training, evaluations beside the paper, timings, config)",
    inputs={
        "outputs": "final outputs of the stages to describe",
        "snakefile": "the workflow's Snakefile, to draw the rule graph (without it the page has no DAG)",
    },
    outputs={
        "json": "JSON summary to write",
        "markdown": "Markdown summary to write",
        "html": "self-contained HTML page to write",
        "plots": "folder of the page's figures (PNG) to write",
    },
    many=("outputs",),
    optional=("snakefile",),
)


def depends_on(config) -> dict:
    """The report shows the whole config, so any config change refreshes it (and nothing else)."""
    return config.to_dict()


def run(config, inputs, outputs) -> dict:
    import os
    from pathlib import Path

    from ga.io import write_json, write_text
    from ga.report import build_report, render_markdown
    from ga.report.build import ReportInputs, write_report_page

    layout = config.layout
    report = build_report(config.run_name, config.to_dict(), [str(p) for p in inputs.outputs], layout.benchmarks)
    page = write_report_page(
        ReportInputs(layout.root, layout.benchmarks, inputs.snakefile),
        config.run_name,
        config.base_model.id,
        outputs.html,
        outputs.plots,
    )
    write_json(report, outputs.json, sort_keys=False)
    plots = os.path.relpath(outputs.plots, Path(outputs.markdown).parent)
    write_text(render_markdown(report, [f"{plots}/{name}" for name in page["figures"]]), outputs.markdown)
    return {
        "json": str(outputs.json),
        "markdown": str(outputs.markdown),
        "html": page["html"],
        "figures": len(page["figures"]),
    }
