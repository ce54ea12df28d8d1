"""`ga report-page RUN_DIR --out DIR`: the report page (index.html + plots/) of a finished run, written into another
folder (the run folder is only read), e.g. to look at a run you copied or that another checkout made."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ga.layout import RunLayout


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ga report-page", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="the run folder (runs/<run_name>, with its config.yaml)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write index.html and plots/ into")
    parser.add_argument(
        "--benchmarks",
        type=Path,
        default=None,
        help="Snakemake's benchmark folder of the run (default: the run folder's benchmarks/)",
    )
    parser.add_argument(
        "--snakefile",
        type=Path,
        default=None,
        help="the workflow's Snakefile, to draw the rule graph (it is run from its own folder)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)

    from ga.data.contracts import DataError
    from ga.report.build import ReportInputs, write_report_page
    from ga.run_config import RunConfig
    from ga.section import ConfigError

    layout = RunLayout(args.run_dir)
    try:
        config = RunConfig.load(layout.config)
        page = write_report_page(
            ReportInputs(args.run_dir, args.benchmarks or layout.benchmarks, args.snakefile),
            config.run_name,
            config.base_model.id,
            args.out / "index.html",
            args.out / "plots",
        )
    except (ConfigError, DataError, FileNotFoundError) as err:
        print(f"ga report-page: {err}", file=sys.stderr)
        return 1
    print(f"wrote {page['html']} ({len(page['figures'])} figures)")
    for note in page["notes"]:
        print(f"note: {note}")
    return 0
