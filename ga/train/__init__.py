"""Training the generator (docs/method.md#training): one DeepSpeed loop (loop.py) with pluggable objectives
(objective.py).

Names are imported lazily: reading a run config needs the settings (config.py) but not torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "TrainConfig": "ga.train.config",
    "PretrainConfig": "ga.train.config",
    "FinetuneConfig": "ga.train.config",
    "Objective": "ga.train.objective",
    "PretrainObjective": "ga.train.objective",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ga.train' has no attribute {name!r}")
