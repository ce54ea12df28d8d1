"""The pipeline's rule graph for the report: `snakemake --rulegraph` of the run's own config, drawn by graphviz.

Snakemake only computes the graph (no job runs, no lock is taken), so this works from inside the report job while
the workflow that runs it holds its lock.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

RULEGRAPH_TIMEOUT_S = 300
"""Parsing the workflow and planning the DAG takes seconds; a hang must not hold the report forever."""
DOT_DPI = "110"


class DagUnavailable(Exception):
    """Why the rule graph could not be drawn (shown in the report instead of the image)."""


def draw_rule_graph(snakefile: str | Path, configfile: str | Path, png: str | Path) -> Path:
    """`snakemake --rulegraph` for `configfile` (complete on its own, e.g. the run's resolved config.yaml) as a
    PNG; raises DagUnavailable (graphviz missing, Snakemake failing) with the reason."""
    dot = shutil.which("dot")
    if dot is None:
        raise DagUnavailable(
            "graphviz's `dot` is not installed (`bash scripts/setup.sh` installs it: "
            "apt-get install graphviz, or conda's graphviz)"
        )
    snakefile = Path(snakefile).resolve()
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(snakefile),
        "--configfile",
        str(Path(configfile).resolve()),
        "--rulegraph",
        "--nolock",
        "--quiet",
        "all",
        "--cores",
        "1",
    ]
    graph = subprocess.run(
        command,
        check=False,
        cwd=snakefile.parent,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=RULEGRAPH_TIMEOUT_S,
    )
    if graph.returncode != 0 or "digraph" not in graph.stdout:
        reason = (graph.stderr.strip().splitlines() or ["no output"])[-1]
        raise DagUnavailable(f"snakemake --rulegraph failed: {reason}")
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    dot_text = graph.stdout[graph.stdout.index("digraph") :]  # anything Snakemake printed before the graph is dropped
    drawn = subprocess.run(
        [dot, "-Tpng", f"-Gdpi={DOT_DPI}", "-o", str(png)],
        input=dot_text,
        check=False,
        capture_output=True,
        text=True,
        timeout=RULEGRAPH_TIMEOUT_S,
    )
    if drawn.returncode != 0:
        raise DagUnavailable(f"dot failed: {drawn.stderr.strip()}")
    return png
