"""The `ga` command: one subcommand per pipeline stage. Each stage's module owns its arguments.

Subcommands are imported lazily so `ga --help` stays fast and a stage's heavy imports load only when used.
"""
from __future__ import annotations

import importlib
import sys

# subcommand -> "module:function"; the function takes argv (list[str]) and returns an exit code.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "fetch-base": ("ga.base:cli_main", "fetch a base model (hub id, local path or the embedded SmolLM2) into a model dir"),
    "pretrain-documents": ("ga.data.pretrain:documents_cli", "materialise pretraining documents (embedded, local files or SlimPajama)"),
    "prepare-pretrain-data": ("ga.data.pretrain:examples_cli", "tokenize, pack and window documents into pretraining examples"),
    "pretrain": ("ga.train.pretrain:cli_main", "pretrain the generator with DeepSpeed (resumes from checkpoints)"),
    "report": ("ga.pipeline.report:cli_main", "summarise a pipeline run (outputs, stage timings, config)"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: ga <command> [options]\n\ncommands:")
        for name, (_, summary) in SUBCOMMANDS.items():
            print(f"  {name:<16} {summary}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"ga: unknown command {name!r}; run `ga --help`", file=sys.stderr)
        return 2
    module_name, func_name = SUBCOMMANDS[name][0].split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    return int(func(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
