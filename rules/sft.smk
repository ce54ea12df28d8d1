# Instruction-tuning data (docs/method.md#instruction-tuning), two stages:
#   sft_sources  one job per dataset of sft_data.datasets: download (or generate) + convert + check ->
#                records.parquet + manifest.json (drops by reason, provenance, licence)
#   sft_data     the mixture: held-out validation slice per dataset, caps, weights, seeded shuffle, MetaICL
#                test-task guard, tokenized into context + conversation windows -> train/ and val/ shards + manifests
# A dataset job's params are its own dataset's settings only, so changing one dataset's filter reruns that job and
# the mixture. The tokenizer is the base model folder's (an input, so a different base model makes both stale).
SFT_DATASETS = RUN_CONFIG.sft_data.datasets
SFT_DATA_RESOURCES = RUN_CONFIG.sft_data.resources


wildcard_constraints:
    dataset="|".join(SFT_DATASETS),


rule sft_sources:
    input:
        base_model=rules.fetch_base.output.base_model,
    output:
        records=directory(LAYOUT.sft_source("{dataset}")),
    log:
        LAYOUT.log("sft_sources", "{dataset}"),
    benchmark:
        LAYOUT.benchmark("sft_sources", "{dataset}")
    priority: TRAINING_PATH_PRIORITY
    threads: 1
    resources:
        mem_mb=8000,
        runtime=12 * 60,
    params:
        depends_on=stage_params("sft_sources"),
    shell:
        stage_shell("sft_sources")


rule sft_data:
    input:
        sources=expand(LAYOUT.sft_source("{dataset}"), dataset=SFT_DATASETS),
        base_model=rules.fetch_base.output.base_model,
    output:
        train=directory(LAYOUT.sft_split("train")),
        val=directory(LAYOUT.sft_split("val")),
    log:
        LAYOUT.log("sft_data"),
    benchmark:
        LAYOUT.benchmark("sft_data")
    priority: TRAINING_PATH_PRIORITY
    threads: SFT_DATA_RESOURCES.threads
    resources:
        mem_mb=SFT_DATA_RESOURCES.mem_mb,
        runtime=SFT_DATA_RESOURCES.runtime,
    params:
        depends_on=stage_params("sft_data"),
    shell:
        stage_shell("sft_data")


FINAL_TARGETS.extend([rules.sft_data.output.train, rules.sft_data.output.val])
