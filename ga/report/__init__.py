"""The run report: everything one pipeline run produced, presented for a reader of the paper.

The last rule of the DAG (ga/stages/report.py) writes runs/{run_name}/report/:

  summary.json, summary.md   what each stage's final outputs are, stage timings, the config   (summary.py)
  index.html                 one self-contained page (figures embedded): the DAG, data statistics, training
                             curves, every evaluation beside the paper's numbers, costs, stage timings and peak
                             memory, the config and package versions                          (build.py, html.py)
  plots/*.png                the same figures as files (Snakemake's own `--report` shows them too)

Modules: content.py (tables, figures, sections as plain values), run.py (reads a run's folder), plots.py
(matplotlib figures), dag.py (the rule graph image), html.py (the page), build.py (puts them together).
`ga report-page RUN_DIR --out DIR` renders the page of any finished run into another folder.
"""

from __future__ import annotations

from ga.report.summary import (
    build_report,
    describe_output,
    read_benchmarks,
    render_markdown,
)

__all__ = ["build_report", "describe_output", "read_benchmarks", "render_markdown"]
