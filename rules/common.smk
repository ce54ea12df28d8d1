# Shared names of every rules file: the run config (loaded, overridden and checked before any job runs), the run's
# folders, and the helpers that give each rule its params and command from its stage module (ga/stages/<rule>.py).
import shlex

from ga.run_config import RunConfig, apply_overrides
from ga.section import ConfigError
from ga import stages

# `--config set="pretrain.steps=400 adapter.alpha=32"` (or a YAML list) overrides single nested values; Snakemake's
# own `--config key=value` only reaches top-level keys. The resolved config below records the result.
_overrides = config.pop("set", None) or []
OVERRIDES = shlex.split(_overrides) if isinstance(_overrides, str) else [str(item) for item in _overrides]
_config_source = ", ".join(map(str, workflow.configfiles)) or "config"
try:
    RUN_CONFIG = RunConfig.from_values(apply_overrides(config, OVERRIDES), source=_config_source)
except ConfigError as err:
    raise SystemExit(f"Error: {err}") from None

# Every output, log and benchmark file of this config, under runs/{run_name}/ (ga/layout.py says where each goes).
LAYOUT = RUN_CONFIG.layout
# The resolved config as this run sees it (files + overrides + defaults); stages read it. It is not a rule input on
# purpose: each rule's params name exactly the values it depends on, so editing one value reruns only those stages.
CONFIG_FILE = str(LAYOUT.config)
REPORT = LAYOUT.report_json

# The generator's training path (data, pretraining, instruction tuning) goes first when jobs compete for cores: the
# evaluation jobs that need no generator (the baselines) fill the cores it leaves free instead of delaying it.
TRAINING_PATH_PRIORITY = 10

# Final outputs of each stage; every rules file appends its own and the report rule collects them all.
FINAL_TARGETS = []


onstart:
    RUN_CONFIG.save(CONFIG_FILE)


def stage_params(rule_name):
    """The config values stage `rule_name`'s outputs depend on (ga/stages/<rule>.py: depends_on); for a rule with
    wildcards (one job per dataset, ...), a function of the job's wildcards, so each job has its own params."""
    wildcard_names = list(stages.load(rule_name).STAGE.wildcards)
    if wildcard_names:
        return lambda wildcards: stages.depends_on(
            rule_name, RUN_CONFIG, **{name: wildcards[name] for name in wildcard_names}
        )
    return stages.depends_on(rule_name, RUN_CONFIG)


def optional_input_flags(rule_name):
    """`params.optional_inputs` of a rule whose stage has optional inputs: the flags of those the job has."""
    optional = stages.load(rule_name).STAGE.optional

    def flags(wildcards, input):
        present = [name for name in optional if name in input.keys()]
        return " ".join(f"--{name.replace('_', '-')} {shlex.quote(str(input[name]))}" for name in present)

    return flags


def stage_shell(rule_name, launcher="ga"):
    """`<launcher> <rule> --config <resolved config> [--<wildcard> {wildcards.<name>:q} ...]
    --<input> {input.<name>:q} ... --<output> {output.<name>:q} ... > {log:q} 2>&1`."""
    stage = stages.load(rule_name).STAGE
    flags = [f"--{name.replace('_', '-')} {{wildcards.{name}:q}}" for name in stage.wildcards]
    flags += [f"--{name.replace('_', '-')} {{input.{name}:q}}" for name in stage.inputs if name not in stage.optional]
    if stage.optional:  # the job's own optional inputs, as `params.optional_inputs` (see optional_input_flags)
        flags.append("{params.optional_inputs}")
    flags += [f"--{name.replace('_', '-')} {{output.{name}:q}}" for name in stage.outputs]
    return f"{launcher} {rule_name} --config {shlex.quote(CONFIG_FILE)} {' '.join(flags)} > {{log:q}} 2>&1"


def method_inputs(registry, paths):
    """`input:` function (for `unpack`) of an evaluation rule with one job per method: the model files the job's
    method needs (its registry entry's `inputs`, ga/eval/family.py), each at `paths[name](wildcards)`."""

    def inputs(wildcards):
        return {name: paths[name](wildcards) for name in registry[wildcards.method].inputs}

    return inputs


def method_resource(resources, name):
    """A resource of the job's method: `resources.<method>.<name>` (an evaluation section's per-method
    `resources`, generated from its registry)."""
    return lambda wildcards: getattr(getattr(resources, wildcards.method), name)
