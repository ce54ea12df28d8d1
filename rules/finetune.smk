# Stage finetune: instruction-tune the pretrained generator (docs/method.md#instruction-tuning; ga/stages/finetune.py)
# in the same DeepSpeed training loop as pretraining. As there, its checkpoints under runs/{run_name}/finetune/state/ are NOT
# declared outputs, so a killed job resumes when the rule reruns; finetune.resources decide both the SLURM request
# and the launcher.
FINETUNE_RESOURCES = RUN_CONFIG.finetune.resources


rule finetune:
    input:
        base_model=rules.fetch_base.output.base_model,
        pretrained=rules.pretrain.output.generator,
        train=rules.sft_data.output.train,
        val=rules.sft_data.output.val,
        deepspeed_config=RUN_CONFIG.finetune.deepspeed_config,
    output:
        generator=directory(LAYOUT.generator("finetune")),
        metrics=LAYOUT.metrics("finetune"),
        validation=LAYOUT.validation("finetune"),
    log:
        LAYOUT.log("finetune"),
    benchmark:
        LAYOUT.benchmark("finetune")
    priority: TRAINING_PATH_PRIORITY
    threads: FINETUNE_RESOURCES.threads
    resources:
        gpu=FINETUNE_RESOURCES.gpus,
        nodes=FINETUNE_RESOURCES.nodes,
        mem_mb=FINETUNE_RESOURCES.mem_mb,
        runtime=FINETUNE_RESOURCES.runtime,
        cpus_per_task=FINETUNE_RESOURCES.threads,
    params:
        depends_on=stage_params("finetune"),
    shell:
        stage_shell("finetune", launcher=launcher(FINETUNE_RESOURCES))


FINAL_TARGETS.extend([rules.finetune.output.generator, rules.finetune.output.metrics, rules.finetune.output.validation])
