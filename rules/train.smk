# Stage pretrain: pretrain the generator (docs/method.md#pretraining-objective; ga/stages/pretrain.py) in one
# DeepSpeed training loop (ZeRO settings from pretrain.deepspeed_config). Its checkpoints, under
# runs/{run_name}/pretrain/state/, are NOT declared outputs: when the job is killed (e.g. at the SLURM time limit) Snakemake
# removes the declared outputs only, and rerunning the rule resumes from the latest checkpoint.
# pretrain.resources decide both the SLURM request and the launcher (ga/launch.py: one process, torchrun, or srun +
# torchrun across nodes), so the two always agree.
from ga.launch import launcher

PRETRAIN_RESOURCES = RUN_CONFIG.pretrain.resources


rule pretrain:
    input:
        base_model=rules.fetch_base.output.base_model,
        train=rules.pretrain_data.output.train,
        val=rules.pretrain_data.output.val,
        documents=rules.pretrain_documents.output.documents,
        deepspeed_config=RUN_CONFIG.pretrain.deepspeed_config,
    output:
        generator=directory(LAYOUT.generator("pretrain")),
        metrics=LAYOUT.metrics("pretrain"),
        validation=LAYOUT.validation("pretrain"),
    log:
        LAYOUT.log("pretrain"),
    benchmark:
        LAYOUT.benchmark("pretrain")
    priority: TRAINING_PATH_PRIORITY
    threads: PRETRAIN_RESOURCES.threads
    resources:
        gpu=PRETRAIN_RESOURCES.gpus,
        nodes=PRETRAIN_RESOURCES.nodes,
        mem_mb=PRETRAIN_RESOURCES.mem_mb,
        runtime=PRETRAIN_RESOURCES.runtime,
        cpus_per_task=PRETRAIN_RESOURCES.threads,
    params:
        depends_on=stage_params("pretrain"),
    shell:
        stage_shell("pretrain", launcher=launcher(PRETRAIN_RESOURCES))


FINAL_TARGETS.extend([rules.pretrain.output.generator, rules.pretrain.output.metrics, rules.pretrain.output.validation])
