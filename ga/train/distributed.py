"""Process-group setup for the training loop: torchrun/srun-launched or a plain single process."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    """Where this process sits: rank among `world_size` processes and the device it computes on."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        dist.barrier()

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum a tensor over all processes (returns a new tensor on the tensor's device)."""
        out = tensor.detach().clone().to(self.device)
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out.to(tensor.device)

    def broadcast_object(self, obj):
        """The main process's `obj` (picklable) on every process; what the others pass is ignored."""
        objects = [obj]
        dist.broadcast_object_list(objects, src=0)
        return objects[0]

    def max(self, value: float) -> float:
        out = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
        dist.all_reduce(out, op=dist.ReduceOp.MAX)
        return float(out.item())


def init_distributed() -> Dist:
    """Join (or, without a launcher, create) the process group: NCCL on GPUs, gloo on CPU.

    torchrun and `srun ... torchrun` set RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR; a plain `ga pretrain` runs as a
    one-process group on an in-memory store, so no port is needed.
    """
    import deepspeed

    use_cuda = torch.cuda.is_available()
    backend = "nccl" if use_cuda else "gloo"
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
    launched = "RANK" in os.environ
    if not launched and (not dist.is_initialized() or dist.get_world_size() == 1):
        # DeepSpeed reads the launcher's variables even for one process; state them for a plain `ga pretrain` (again
        # when this process's one-process group outlived them, as between tests)
        for name, value in (("RANK", "0"), ("WORLD_SIZE", "1"), ("LOCAL_RANK", "0")):
            os.environ.setdefault(name, value)
    if not dist.is_initialized():
        if launched:
            dist.init_process_group(backend)
        else:
            dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
    deepspeed.init_distributed(dist_backend=backend)
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    return Dist(
        rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank, device=device, backend=backend
    )
