"""Pipeline stages: one module per Snakemake rule, all of one shape.

`ga/stages/<rule>.py` defines
    STAGE                      a `Stage`: its rule name (= its `ga` subcommand), a summary, its named inputs/outputs
                               and the wildcards of its rule (one job per value, e.g. one per dataset)
    depends_on(config, **wildcards) -> dict
                               exactly the config values its outputs depend on (the rule's `params:`, and the
                               fingerprint of anything it resumes); for a job of a wildcard rule, that job's values
    run(config, inputs, outputs, **wildcards) -> dict | None
                               the work; inputs/outputs are namespaces of paths named as in the rule
and the command line is the same for every stage:

    ga <rule> --config RUN_CONFIG [--<wildcard> VALUE ...] [--<input> PATH ...] [--<output> PATH ...]

(flag names are the rule's wildcard, input and output names with '-' for '_'). Mistakes a user can fix (a bad config value,
a malformed, empty or missing input file, a missing base model) end with one line naming the file, row or key, and exit
status 1, without a traceback (`ga.errors`).
"""

from __future__ import annotations

import argparse
import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace

from ga import errors  # the module, not its names: `report` is also this package's stage module

STAGE_NAMES = (
    "fetch_base",
    "pretrain_documents",
    "pretrain_data",
    "pretrain",
    "sft_sources",
    "sft_data",
    "finetune",
    "knowledge_contexts",
    "knowledge_qa_lora",
    "knowledge_eval",
    "knowledge_summary",
    "icl_episodes",
    "icl_eval",
    "icl_summary",
    "msc_conversations",
    "msc_eval",
    "msc_summary",
    "report",
)
"""Every stage, in DAG order (the order of `include:` lines in the Snakefile)."""


@dataclass(frozen=True)
class Stage:
    name: str
    """Rule name and `ga` subcommand."""
    summary: str
    inputs: dict[str, str] = field(default_factory=dict)
    """Input name (as in the rule) -> help text."""
    outputs: dict[str, str] = field(default_factory=dict)
    """Output name (as in the rule) -> help text."""
    many: tuple[str, ...] = ()
    """Inputs that take several paths."""
    optional: tuple[str, ...] = ()
    """Inputs that only some jobs of the rule have (e.g. the generator, for the generative adapter's jobs only):
    their flags may be left out, and the stage gets None."""
    wildcards: dict[str, str] = field(default_factory=dict)
    """Wildcard name (as in the rule) -> help text: the rule has one job per value."""


def load(name: str) -> ModuleType:
    """The module of stage `name` (a rule name)."""
    if name not in STAGE_NAMES:
        raise KeyError(f"unknown stage {name!r}; stages are {', '.join(STAGE_NAMES)}")
    return importlib.import_module(f"ga.stages.{name}")


def depends_on(name: str, config, **wildcards: str) -> dict:
    """What stage `name`'s outputs depend on, for `config` (a RunConfig) and, for a wildcard rule, one job's
    wildcard values."""
    return load(name).depends_on(config, **wildcards)


def summary(name: str) -> str:
    return load(name).STAGE.summary


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def main(name: str, argv: list[str]) -> int:
    """`ga <name> ...`: parse the uniform flags, load the run config, run the stage."""
    module = load(name)
    stage: Stage = module.STAGE
    parser = argparse.ArgumentParser(prog=f"ga {name}", description=stage.summary)
    parser.add_argument("--config", required=True, type=Path, help="the run config (YAML)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override one config value (repeatable)",
    )
    jobs = parser.add_argument_group("job")
    for key, help_text in stage.wildcards.items():
        jobs.add_argument(_flag(key), dest=key, required=True, help=help_text)
    for group_name, names in (("inputs", stage.inputs), ("outputs", stage.outputs)):
        group = parser.add_argument_group(group_name)
        for key, help_text in names.items():
            many = key in stage.many
            group.add_argument(
                _flag(key),
                dest=key,
                required=key not in stage.optional,
                type=Path,
                nargs="+" if many else None,
                help=help_text,
            )
    args = parser.parse_args(argv)
    inputs = SimpleNamespace(**{key: getattr(args, key) for key in stage.inputs})
    outputs = SimpleNamespace(**{key: getattr(args, key) for key in stage.outputs})
    wildcards = {key: getattr(args, key) for key in stage.wildcards}

    from ga.run_config import RunConfig

    try:
        config = RunConfig.load(args.config, args.overrides)
        result = module.run(config, inputs, outputs, **wildcards)
    except errors.REPORTED_ERRORS as err:
        if not errors.is_user_error(err):
            raise
        return errors.report(name, err)
    if result is not None:
        print(json.dumps(result, default=str))
    return 0
