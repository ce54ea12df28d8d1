# Evaluation I, knowledge acquisition by context length (docs/method.md#evaluation), four stages:
#   knowledge_contexts  one job per benchmark x length: passages grouped into contexts of k tokens, with questions
#   knowledge_qa_lora   one job per benchmark: the QA fine-tuning baseline's LoRA (only when that method runs)
#   knowledge_eval      one job per benchmark x method x length: answers, scores, costs
#   knowledge_summary   every job in one table, beside the paper's numbers
# Adding a length, a method or a benchmark to knowledge_eval runs only the new jobs; a job's params are its own
# method's settings, so changing one baseline's setting reruns only its jobs. Each method's jobs request
# knowledge_eval.resources.<method> from the cluster.
from ga.eval.knowledge.methods import REGISTRY as KQA_METHODS

KQA_DIR = LAYOUT.knowledge_eval
KQA = RUN_CONFIG.knowledge_eval
KQA_RESOURCES = KQA.resources
KQA_WILDCARDS = {"benchmark": "|".join(KQA.benchmarks), "method": "|".join(KQA.methods), "length": r"\d+"}


def knowledge_source_files(wildcards):
    """The user-supplied files a benchmark is read from (so that a changed file makes its jobs stale)."""
    if wildcards.benchmark != "streamingqa":
        return []
    return [KQA.streamingqa.test_csv]


def knowledge_qa_source_files(wildcards):
    if wildcards.benchmark != "streamingqa":
        return []
    return [KQA.streamingqa.train_csv]


# Where each model file a method's jobs need comes from (ga.eval.knowledge.methods.REGISTRY says which it needs).
KQA_METHOD_INPUTS = method_inputs(
    KQA_METHODS,
    {
        "generator": lambda wildcards: rules.finetune.output.generator,
        "qa_lora": lambda wildcards: f"{KQA_DIR}/{wildcards.benchmark}/qa_lora",
    },
)


rule knowledge_contexts:
    input:
        base_model=rules.fetch_base.output.base_model,
        source_files=knowledge_source_files,
    output:
        contexts=f"{KQA_DIR}/{{benchmark}}/contexts/{{length}}.parquet",
    log:
        LAYOUT.log("knowledge_contexts", "{benchmark}", "{length}"),
    benchmark:
        LAYOUT.benchmark("knowledge_contexts", "{benchmark}", "{length}")
    wildcard_constraints:
        **KQA_WILDCARDS,
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        depends_on=stage_params("knowledge_contexts"),
    shell:
        stage_shell("knowledge_contexts")


rule knowledge_qa_lora:
    input:
        base_model=rules.fetch_base.output.base_model,
        source_files=knowledge_qa_source_files,
    output:
        qa_lora=directory(f"{KQA_DIR}/{{benchmark}}/qa_lora"),
    log:
        LAYOUT.log("knowledge_qa_lora", "{benchmark}"),
    benchmark:
        LAYOUT.benchmark("knowledge_qa_lora", "{benchmark}")
    wildcard_constraints:
        **KQA_WILDCARDS,
    threads: KQA_RESOURCES.qa_finetuning.threads
    resources:
        gpu=KQA_RESOURCES.qa_finetuning.gpus,
        mem_mb=KQA_RESOURCES.qa_finetuning.mem_mb,
        runtime=KQA_RESOURCES.qa_finetuning.runtime,
        cpus_per_task=KQA_RESOURCES.qa_finetuning.threads,
    params:
        depends_on=stage_params("knowledge_qa_lora"),
    shell:
        stage_shell("knowledge_qa_lora")


rule knowledge_eval:
    input:
        unpack(KQA_METHOD_INPUTS),
        base_model=rules.fetch_base.output.base_model,
        contexts=rules.knowledge_contexts.output.contexts,
    output:
        results=directory(f"{KQA_DIR}/{{benchmark}}/{{method}}/{{length}}"),
    log:
        LAYOUT.log("knowledge_eval", "{benchmark}", "{method}", "{length}"),
    benchmark:
        LAYOUT.benchmark("knowledge_eval", "{benchmark}", "{method}", "{length}")
    wildcard_constraints:
        **KQA_WILDCARDS,
    threads: method_resource(KQA_RESOURCES, "threads")
    resources:
        gpu=method_resource(KQA_RESOURCES, "gpus"),
        mem_mb=method_resource(KQA_RESOURCES, "mem_mb"),
        runtime=method_resource(KQA_RESOURCES, "runtime"),
        cpus_per_task=method_resource(KQA_RESOURCES, "threads"),
    params:
        depends_on=stage_params("knowledge_eval"),
        optional_inputs=optional_input_flags("knowledge_eval"),
    shell:
        stage_shell("knowledge_eval")


KQA_RESULTS = expand(
    f"{KQA_DIR}/{{benchmark}}/{{method}}/{{length}}", benchmark=KQA.benchmarks, method=KQA.methods, length=KQA.lengths
)


rule knowledge_summary:
    input:
        results=KQA_RESULTS,
    output:
        table=f"{KQA_DIR}/summary.parquet",
        markdown=f"{KQA_DIR}/summary.md",
    log:
        LAYOUT.log("knowledge_summary"),
    benchmark:
        LAYOUT.benchmark("knowledge_summary")
    localrule: True
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        depends_on=stage_params("knowledge_summary"),
    shell:
        stage_shell("knowledge_summary")


FINAL_TARGETS.extend([rules.knowledge_summary.output.table, rules.knowledge_summary.output.markdown])
