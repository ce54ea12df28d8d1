# Stage 3: pretrain the generator (SPEC 2.1; ga/train/). One DeepSpeed training loop (ZeRO from
# pretrain.deepspeed_config, resources/deepspeed/), checkpoints under {RUN}/pretrain/state/ that are NOT declared
# outputs: when the job is killed (e.g. at the SLURM time limit) Snakemake removes the declared outputs only,
# and rerunning the rule resumes from the latest checkpoint.
#
# Launch, from pretrain.resources:
#   gpus 0            one CPU process:  ga pretrain ...
#   gpus N, nodes 1   torchrun --standalone --nproc_per_node N -m ga.cli pretrain ...   (one process per GPU)
#   gpus N, nodes M   srun --nodes M --ntasks-per-node 1 torchrun --nnodes M --nproc_per_node N
#                     --rdzv-backend c10d --rdzv-endpoint <first node of the allocation>:29500 -m ga.cli pretrain ...
#                     (the SLURM job spans M nodes; srun starts one torchrun per node, they meet at the rendezvous)
# The SLURM profile (./slurm) requests gpu/mem_mb/runtime/cpus_per_task/nodes from the resources below.

PRETRAIN_RESOURCES = {"gpus": 0, "nodes": 1, "threads": 2, "mem_mb": 8000, "runtime": 60,
                      **config["pretrain"].get("resources", {})}
PRETRAIN_DIR = f"{RUN}/pretrain"
RENDEZVOUS_PORT = 29500  # torchrun's conventional c10d port on the first node of a multi-node job


def pretrain_launcher(resources):
    gpus, nodes = resources["gpus"], resources["nodes"]
    if gpus == 0:
        if nodes != 1:
            raise ValueError("pretrain.resources: nodes > 1 needs gpus >= 1")
        return "ga"
    if nodes == 1:
        return f"torchrun --standalone --nproc_per_node {gpus} -m ga.cli"
    first_node = "$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1)"
    return (f"srun --nodes {nodes} --ntasks-per-node 1 torchrun --nnodes {nodes} --nproc_per_node {gpus}"
            f" --rdzv-backend c10d --rdzv-id \"$SLURM_JOB_ID\" --rdzv-endpoint {first_node}:{RENDEZVOUS_PORT} -m ga.cli")


rule pretrain:
    input:
        base_model=f"{RUN}/base_model",
        train=f"{RUN}/data/pretrain/train",
        val=f"{RUN}/data/pretrain/val",
        deepspeed_config=config["pretrain"]["deepspeed_config"],
    output:
        generator=directory(f"{PRETRAIN_DIR}/generator"),
        metrics=f"{PRETRAIN_DIR}/metrics.jsonl",
        validation=f"{PRETRAIN_DIR}/validation.json",
    params:
        # everything the trained weights depend on (the data and base model are inputs)
        pretrain=config["pretrain"],
        adapter=config["adapter"],
        base_model=config["base_model"],
        seed=config["seed"],
        launcher=pretrain_launcher(PRETRAIN_RESOURCES),
        state=f"{PRETRAIN_DIR}/state",
    log:
        f"{LOGS}/pretrain.log",
    benchmark:
        f"{BENCH}/pretrain.tsv"
    threads: PRETRAIN_RESOURCES["threads"]
    resources:
        gpu=PRETRAIN_RESOURCES["gpus"],
        nodes=PRETRAIN_RESOURCES["nodes"],
        mem_mb=PRETRAIN_RESOURCES["mem_mb"],
        runtime=PRETRAIN_RESOURCES["runtime"],
        cpus_per_task=PRETRAIN_RESOURCES["threads"],
    shell:
        "{params.launcher} pretrain --config {CONFIG_FILE:q} --base {input.base_model:q} --train {input.train:q}"
        " --val {input.val:q} --out {PRETRAIN_DIR:q} > {log:q} 2>&1"


FINAL_TARGETS.extend([rules.pretrain.output.generator, rules.pretrain.output.metrics, rules.pretrain.output.validation])
