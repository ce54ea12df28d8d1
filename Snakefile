# Generative Adapter (ICLR 2025), reproduced as a pipeline (docs/rulegraph.png shows the DAG):
#   fetch the frozen base model -> prepare the pretraining data -> pretrain the generator -> ... -> report.
# One config per setting: config/config.yaml (embedded default, used when no --configfile is given),
# config/smoke.yaml, config/paper-mistral.yaml, config/paper-llama2.yaml. Each rule lives in rules/*.smk, calls
# a `ga` subcommand (the logic is in the ga package), writes logs/{run_name}/<rule>.log and
# benchmarks/{run_name}/<rule>.tsv, and lists the config values it uses in `params:` so that changing one
# reruns exactly the stages that depend on it.
from pathlib import Path

from snakemake.utils import validate

from ga.pipeline.config import validate_config, write_resolved_config

REPO = Path(workflow.basedir)
SCHEMA = REPO / "config" / "schema.yaml"


# The embedded default applies only when no --configfile is given: each config file is complete on its own
# (Snakemake would otherwise deep-merge it into the default, hiding keys a config forgot).
if not workflow.overwrite_configfiles:

    configfile: str(REPO / "config" / "config.yaml")


# Concise errors naming every bad key first, then Snakemake's own validation (the issue's contract).
validate_config(config, SCHEMA, source=", ".join(map(str, workflow.configfiles)))
validate(config, str(SCHEMA))

RUN_NAME = config["run_name"]
RUN = f"runs/{RUN_NAME}"  # every output of this config
LOGS = f"logs/{RUN_NAME}"
BENCH = f"benchmarks/{RUN_NAME}"
# The validated config as this run sees it (config files + --config overrides); `ga` subcommands read their
# section from it. It is not a rule input on purpose: each rule's `params:` name the values it depends on,
# so editing one value does not make every stage stale.
CONFIG_FILE = f"{RUN}/config.yaml"


onstart:
    write_resolved_config(config, CONFIG_FILE)


# Final outputs of each stage; every rules/*.smk appends its own, the report rule collects them all.
FINAL_TARGETS = []
REPORT = f"{RUN}/report/summary.json"


# `snakemake` with no target: the whole DAG of this config, up to the report (rules/report.smk).
rule all:
    input:
        REPORT,


# Rules files are included in name order; none may rely on another's rules being defined first.
for rules_file in sorted((REPO / "rules").glob("*.smk")):

    include: str(rules_file)
