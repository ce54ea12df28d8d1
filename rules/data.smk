# Pretraining data (docs/method.md#pretraining-data), two stages so that changing the window layout does not
# re-draw (for SlimPajama: re-stream) the documents:
#   pretrain_documents  documents from the configured source until the token budget is spent (Parquet + manifest)
#   pretrain_data       tokenize, pack and lay out completion + reconstruction windows; train/ and val/ (held-out
#                       documents) shards + manifests
# The tokenizer is the base model folder's (an input, so a different base model makes both stale).
PRETRAIN_DATA_RESOURCES = RUN_CONFIG.pretrain_data.resources


rule pretrain_documents:
    input:
        base_model=rules.fetch_base.output.base_model,
    output:
        documents=directory(LAYOUT.pretrain_documents),
    log:
        LAYOUT.log("pretrain_documents"),
    benchmark:
        LAYOUT.benchmark("pretrain_documents")
    priority: TRAINING_PATH_PRIORITY
    threads: PRETRAIN_DATA_RESOURCES.threads
    resources:
        mem_mb=PRETRAIN_DATA_RESOURCES.mem_mb,
        runtime=PRETRAIN_DATA_RESOURCES.runtime,
    params:
        depends_on=stage_params("pretrain_documents"),
    shell:
        stage_shell("pretrain_documents")


rule pretrain_data:
    input:
        documents=rules.pretrain_documents.output.documents,
        base_model=rules.fetch_base.output.base_model,
    output:
        train=directory(LAYOUT.pretrain_split("train")),
        val=directory(LAYOUT.pretrain_split("val")),
    log:
        LAYOUT.log("pretrain_data"),
    benchmark:
        LAYOUT.benchmark("pretrain_data")
    priority: TRAINING_PATH_PRIORITY
    threads: PRETRAIN_DATA_RESOURCES.threads
    resources:
        mem_mb=PRETRAIN_DATA_RESOURCES.mem_mb,
        runtime=PRETRAIN_DATA_RESOURCES.runtime,
    params:
        depends_on=stage_params("pretrain_data"),
    shell:
        stage_shell("pretrain_data")


FINAL_TARGETS.extend([rules.pretrain_data.output.train, rules.pretrain_data.output.val])
