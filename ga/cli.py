"""The `ga` command: one subcommand per pipeline stage (named as its Snakemake rule), the user's commands, and tools.

    ga <rule> --config RUN_CONFIG --<input> PATH ... --<output> PATH ...   (ga/stages/__init__.py)
    ga adapt | ask | chat | export-peft ...                                 (ga/app/cli.py, docs/tutorial.md)
    ga schema | report-page | ablate ...                                   (tools, TOOLS below)

Stage modules are imported only when their subcommand runs, so `ga --help` stays fast.
"""

from __future__ import annotations

import importlib
import sys

from ga.app.cli import COMMANDS
from ga.app.cli import main as run_command
from ga.app.cli import summary as command_summary
from ga.stages import STAGE_NAMES
from ga.stages import main as run_stage

TOOLS = {
    "schema": "print the JSON Schema of run configs (config/schema.yaml), generated from the dataclasses",
    "report-page": "write the report page (index.html + plots/) of a finished run into another folder",
    "ablate": "run config variants through the pipeline and tabulate their validation (the paper's ablations)",
}
TOOL_MODULES = {"report-page": "ga.report.cli", "ablate": "ga.ablation"}
"""The module whose `main(argv)` runs each tool with options (imported only when it runs)."""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        from ga.stages import summary

        print("usage: ga <command> [options]   (ga <command> --help for its options)\n\nstages (rule names):")
        for name in STAGE_NAMES:
            print(f"  {name:<20} {summary(name)}")
        print("\nuse a generator (docs/tutorial.md):")
        for name in COMMANDS:
            print(f"  {name:<20} {command_summary(name)}")
        print("\ntools:")
        for name, text in TOOLS.items():
            print(f"  {name:<20} {text}")
        return 0
    name, rest = argv[0], argv[1:]
    if name in STAGE_NAMES:
        return run_stage(name, rest)
    if name in COMMANDS:
        return run_command(name, rest)
    if name in TOOL_MODULES:
        return importlib.import_module(TOOL_MODULES[name]).main(rest)
    if name == "schema":
        from ga.run_config import schema_yaml

        sys.stdout.write(schema_yaml())
        return 0
    print(f"ga: unknown command {name!r}; run `ga --help`", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
