# Pretraining data (docs/method.md#pretraining-data), two stages so that changing the window layout does not
# re-draw (for SlimPajama: re-stream) the documents:
#   pretrain_documents  documents from the configured source until the token budget is spent (Parquet + manifest)
#   pretrain_data       tokenize, pack and lay out completion + reconstruction windows; train/ and val/ (held-out
#                       documents) shards + manifests
# The tokenizer is the base model folder's (an input, so a different base model makes both stale).
PRETRAIN_DATA_DIR = f"{RUN}/data/pretrain"
PRETRAIN_DATA_RESOURCES = RUN_CONFIG.pretrain_data.resources


rule pretrain_documents:
    input:
        base_model=rules.fetch_base.output.base_model,
    output:
        documents=directory(f"{PRETRAIN_DATA_DIR}/documents"),
    params:
        depends_on=stage_params("pretrain_documents"),
    log:
        f"{LOGS}/pretrain_documents.log",
    benchmark:
        f"{BENCH}/pretrain_documents.tsv"
    priority: TRAINING_PATH_PRIORITY
    threads: PRETRAIN_DATA_RESOURCES.threads
    resources:
        mem_mb=PRETRAIN_DATA_RESOURCES.mem_mb,
        runtime=PRETRAIN_DATA_RESOURCES.runtime,
    shell:
        stage_shell("pretrain_documents")


rule pretrain_data:
    input:
        documents=rules.pretrain_documents.output.documents,
        base_model=rules.fetch_base.output.base_model,
    output:
        train=directory(f"{PRETRAIN_DATA_DIR}/train"),
        val=directory(f"{PRETRAIN_DATA_DIR}/val"),
    params:
        depends_on=stage_params("pretrain_data"),
    log:
        f"{LOGS}/pretrain_data.log",
    benchmark:
        f"{BENCH}/pretrain_data.tsv"
    priority: TRAINING_PATH_PRIORITY
    threads: PRETRAIN_DATA_RESOURCES.threads
    resources:
        mem_mb=PRETRAIN_DATA_RESOURCES.mem_mb,
        runtime=PRETRAIN_DATA_RESOURCES.runtime,
    shell:
        stage_shell("pretrain_data")


FINAL_TARGETS.extend([rules.pretrain_data.output.train, rules.pretrain_data.output.val])
