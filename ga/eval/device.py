"""Where evaluation runs: the GPU when there is one (one process per job), else the CPU."""

from __future__ import annotations


def evaluation_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def limit_threads(threads: int) -> None:
    """Use at most the job's requested cores for torch's CPU kernels: more threads than cores (several jobs on one
    machine, or a SLURM allocation smaller than the node) makes every job many times slower."""
    import torch

    torch.set_num_threads(threads)
