# Generative Adapter (ICLR 2025), reproduced as a pipeline (docs/rulegraph.png shows the DAG):
#   fetch the frozen base model -> prepare the pretraining data -> pretrain the generator -> prepare the
#   instruction-tuning data -> fine-tune the generator -> evaluate (knowledge QA by context length,
#   in-context learning, personalization) -> report.
# One config per setting (config/*.yaml; config/config.yaml, the embedded default, when no --configfile is given),
# checked against config/schema.yaml before any job runs. Each rule calls the `ga` subcommand of its name
# (ga/stages/<rule>.py), writes runs/{run_name}/logs/<rule>.log and runs/{run_name}/benchmarks/<rule>.tsv
# (ga/layout.py), and lists under `params:` exactly the config values its outputs depend on, so changing one reruns
# only the stages that use it.


# A config file given with --configfile is complete on its own (missing keys take the dataclass defaults), so the
# embedded default is not merged under it.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "rules/common.smk"


# `snakemake --report report.html`: Snakemake's own report of the run, with this description, the run's report page
# and its figures (marked with report() in rules/report.smk).
report: "workflow/report/workflow.rst"


# `snakemake` with no target: the whole DAG of this config, up to the report.
rule all:
    input:
        REPORT,


# Stages, in DAG order.
include: "rules/base.smk"
include: "rules/data.smk"
include: "rules/sft.smk"
include: "rules/train.smk"
include: "rules/finetune.smk"
include: "rules/eval.smk"
include: "rules/icl.smk"
include: "rules/msc.smk"
include: "rules/report.smk"
