"""How a training stage is launched, from its `resources` section: one process, torchrun on one node, or srun +
torchrun across nodes. The rule's shell command starts with `launcher(resources)` followed by the `ga` subcommand."""

from __future__ import annotations

from ga.resources import Resources

RENDEZVOUS_PORT = 29500
"""torchrun's conventional c10d port, on the first node of a multi-node job."""


def launcher(resources: Resources) -> str:
    """The command that starts `ga <stage> ...` on the resources:

    gpus 0            `ga` (one CPU process)
    gpus N, nodes 1   `torchrun --standalone --nproc_per_node N -m ga.cli` (one process per GPU)
    gpus N, nodes M   `srun --nodes M --ntasks-per-node 1 torchrun --nnodes M --nproc_per_node N --rdzv-backend c10d
                      --rdzv-id $SLURM_JOB_ID --rdzv-endpoint <first node>:PORT -m ga.cli` (the SLURM job spans M
                      nodes; srun starts one torchrun per node and they meet at the rendezvous)
    """
    gpus, nodes = resources.gpus, resources.nodes
    if gpus == 0:
        if nodes != 1:
            raise ValueError("resources: nodes > 1 needs gpus >= 1")
        return "ga"
    if nodes == 1:
        return f"torchrun --standalone --nproc_per_node {gpus} -m ga.cli"
    first_node = '$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)'
    return (
        f"srun --nodes {nodes} --ntasks-per-node 1 torchrun --nnodes {nodes} --nproc_per_node {gpus}"
        f' --rdzv-backend c10d --rdzv-id "$SLURM_JOB_ID" --rdzv-endpoint {first_node}:{RENDEZVOUS_PORT}'
        " -m ga.cli"
    )
