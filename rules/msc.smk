# Evaluation II, personalization on multi-session chats (docs/method.md#personalization), three stages:
#   msc_conversations  one job per benchmark: the conversations (earlier sessions + the current dialog) and questions
#   msc_eval           one job per benchmark x conversation batch x method: answers, F1 / ROUGE-L, Table 1 costs
#   msc_summary        every job pooled into the paper's Table 1
# A new method or batch runs only its jobs; each method's jobs request msc_eval.resources.<method>.
from ga.eval.msc.jobs import batch_ids
from ga.eval.msc.methods import REGISTRY as MSC_METHODS

MSC_DIR = LAYOUT.msc_eval
MSC = RUN_CONFIG.msc_eval
MSC_WILDCARDS = {"benchmark": "|".join(MSC.benchmarks), "method": "|".join(MSC.methods), "batch": r"\d+"}


# Where each model file a method's jobs need comes from (ga.eval.msc.methods.REGISTRY says which it needs).
MSC_METHOD_INPUTS = method_inputs(MSC_METHODS, {"generator": lambda wildcards: rules.finetune.output.generator})


rule msc_conversations:
    input:
        base_model=rules.fetch_base.output.base_model,
    output:
        conversations=f"{MSC_DIR}/{{benchmark}}/conversations.parquet",
    log:
        LAYOUT.log("msc_conversations", "{benchmark}"),
    benchmark:
        LAYOUT.benchmark("msc_conversations", "{benchmark}")
    wildcard_constraints:
        **MSC_WILDCARDS,
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        depends_on=stage_params("msc_conversations"),
    shell:
        stage_shell("msc_conversations")


rule msc_eval:
    input:
        unpack(MSC_METHOD_INPUTS),
        base_model=rules.fetch_base.output.base_model,
        conversations=rules.msc_conversations.output.conversations,
    output:
        results=directory(f"{MSC_DIR}/{{benchmark}}/{{method}}/batch-{{batch}}"),
    log:
        LAYOUT.log("msc_eval", "{benchmark}", "{method}", "{batch}"),
    benchmark:
        LAYOUT.benchmark("msc_eval", "{benchmark}", "{method}", "{batch}")
    wildcard_constraints:
        **MSC_WILDCARDS,
    threads: method_resource(MSC.resources, "threads")
    resources:
        gpu=method_resource(MSC.resources, "gpus"),
        mem_mb=method_resource(MSC.resources, "mem_mb"),
        runtime=method_resource(MSC.resources, "runtime"),
        cpus_per_task=method_resource(MSC.resources, "threads"),
    params:
        depends_on=stage_params("msc_eval"),
        optional_inputs=optional_input_flags("msc_eval"),
    shell:
        stage_shell("msc_eval")


MSC_RESULTS = [
    f"{MSC_DIR}/{benchmark}/{method}/batch-{batch}"
    for benchmark in MSC.benchmarks
    for method in MSC.methods
    for batch in batch_ids(RUN_CONFIG, benchmark)
]


rule msc_summary:
    input:
        results=MSC_RESULTS,
    output:
        table=f"{MSC_DIR}/summary.parquet",
        markdown=f"{MSC_DIR}/summary.md",
    log:
        LAYOUT.log("msc_summary"),
    benchmark:
        LAYOUT.benchmark("msc_summary")
    localrule: True
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        depends_on=stage_params("msc_summary"),
    shell:
        stage_shell("msc_summary")


FINAL_TARGETS.extend([rules.msc_summary.output.table, rules.msc_summary.output.markdown])
