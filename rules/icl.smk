# Evaluation II, in-context learning (docs/method.md#in-context-learning), three stages:
#   icl_episodes  one job per benchmark x task x seed: the task's 16 training examples of the seed and its test set
#   icl_eval      one job per benchmark x task x k x seed x method (zero_shot once per task, at k = 0 and the
#                 first seed): answers to every test query, scored by exact match, with costs
#   icl_summary   every job in tables by task, k and kind (classification / multiple choice)
# A new k, seed or method runs only its jobs; a job's params are its own method's settings. Each method's jobs
# request icl_eval.resources.<method> from the cluster.
from ga.eval.icl.methods import REGISTRY as ICL_METHODS
from ga.eval.icl.sources import icl_jobs

ICL_DIR = LAYOUT.icl_eval
ICL = RUN_CONFIG.icl_eval
ICL_JOBS = icl_jobs(RUN_CONFIG)
ICL_WILDCARDS = {
    "benchmark": "|".join(ICL.benchmarks),
    "method": "|".join(ICL.methods),
    "task": r"[^/]+",
    "k": r"\d+",
    "seed": r"\d+",
}


def validation_episodes(wildcards):
    """The validation seed's episodes file of the job's task (few-shot fine-tuning's early stopping)."""
    from ga.eval.icl.methods import validation_seed

    other = validation_seed(ICL.seeds, int(wildcards.seed))
    return f"{ICL_DIR}/{wildcards.benchmark}/episodes/{wildcards.task}/{other}.parquet"


# Where each input a method's jobs need comes from (ga.eval.icl.methods.REGISTRY says which it needs).
ICL_METHOD_INPUTS = method_inputs(
    ICL_METHODS,
    {
        "generator": lambda wildcards: rules.finetune.output.generator,
        "validation": validation_episodes,
    },
)


rule icl_episodes:
    output:
        episodes=f"{ICL_DIR}/{{benchmark}}/episodes/{{task}}/{{seed}}.parquet",
    log:
        LAYOUT.log("icl_episodes", "{benchmark}", "{task}", "{seed}"),
    benchmark:
        LAYOUT.benchmark("icl_episodes", "{benchmark}", "{task}", "{seed}")
    wildcard_constraints:
        **ICL_WILDCARDS,
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        depends_on=stage_params("icl_episodes"),
    shell:
        stage_shell("icl_episodes")


rule icl_eval:
    input:
        unpack(ICL_METHOD_INPUTS),
        base_model=rules.fetch_base.output.base_model,
        episodes=rules.icl_episodes.output.episodes,
    output:
        results=directory(f"{ICL_DIR}/{{benchmark}}/{{task}}/{{method}}/k{{k}}-s{{seed}}"),
    log:
        LAYOUT.log("icl_eval", "{benchmark}", "{task}", "{method}", "k{k}-s{seed}"),
    benchmark:
        LAYOUT.benchmark("icl_eval", "{benchmark}", "{task}", "{method}", "k{k}-s{seed}")
    wildcard_constraints:
        **ICL_WILDCARDS,
    threads: method_resource(ICL.resources, "threads")
    resources:
        gpu=method_resource(ICL.resources, "gpus"),
        mem_mb=method_resource(ICL.resources, "mem_mb"),
        runtime=method_resource(ICL.resources, "runtime"),
        cpus_per_task=method_resource(ICL.resources, "threads"),
    params:
        depends_on=stage_params("icl_eval"),
        optional_inputs=optional_input_flags("icl_eval"),
    shell:
        stage_shell("icl_eval")


ICL_RESULTS = [
    f"{ICL_DIR}/{job['benchmark']}/{job['task']}/{job['method']}/k{job['k']}-s{job['seed']}" for job in ICL_JOBS
]


rule icl_summary:
    input:
        results=ICL_RESULTS,
    output:
        summary=directory(f"{ICL_DIR}/summary"),
    log:
        LAYOUT.log("icl_summary"),
    benchmark:
        LAYOUT.benchmark("icl_summary")
    localrule: True
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        depends_on=stage_params("icl_summary"),
    shell:
        stage_shell("icl_summary")


FINAL_TARGETS.append(rules.icl_summary.output.summary)
