# Stage 2: pretraining data (SPEC 2.1; ga/data/). Two rules so that changing the window layout does not re-draw
# (for SlimPajama: re-stream) the documents:
#   pretrain_documents: documents from the configured source until the token budget is spent (Parquet + manifest)
#   pretrain_data:      tokenize, pack into window x completion_windows sequences, lay out completion and
#                       reconstruction windows; train/ and val/ (held-out documents) shards + manifests
# The tokenizer is the base model dir's (an input, so a different base model makes both stale). Their params are
# exactly the pretrain_data values each stage's output depends on (computed by ga.data.settings), never
# training hyperparameters.
from ga.data.settings import PretrainDataSettings

PRETRAIN_DATA = PretrainDataSettings.from_dict(config["pretrain_data"], seed=config["seed"])
PRETRAIN_DATA_DIR = f"{RUN}/data/pretrain"


rule pretrain_documents:
    input:
        base_model=rules.fetch_base.output[0],
    output:
        directory(f"{PRETRAIN_DATA_DIR}/documents"),
    params:
        documents=PRETRAIN_DATA.documents_params(),
    log:
        f"{LOGS}/pretrain_documents.log",
    benchmark:
        f"{BENCH}/pretrain_documents.tsv"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=24 * 60,
    shell:
        "ga pretrain-documents --config {CONFIG_FILE:q} --base-model {input.base_model:q} --out {output:q}"
        " > {log:q} 2>&1"


rule pretrain_data:
    input:
        documents=rules.pretrain_documents.output[0],
        base_model=rules.fetch_base.output[0],
    output:
        train=directory(f"{PRETRAIN_DATA_DIR}/train"),
        val=directory(f"{PRETRAIN_DATA_DIR}/val"),
    params:
        examples=PRETRAIN_DATA.examples_params(),
    log:
        f"{LOGS}/pretrain_data.log",
    benchmark:
        f"{BENCH}/pretrain_data.tsv"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=24 * 60,
    shell:
        "ga prepare-pretrain-data --config {CONFIG_FILE:q} --base-model {input.base_model:q}"
        " --documents {input.documents:q} --train-out {output.train:q} --val-out {output.val:q} > {log:q} 2>&1"


FINAL_TARGETS.extend([rules.pretrain_data.output.train, rules.pretrain_data.output.val])
