"""Where evaluation runs: the GPU when there is one (one process per job), else the CPU."""
from __future__ import annotations


def evaluation_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
