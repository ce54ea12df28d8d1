"""ga: Generative Adapter for Hugging Face causal LMs (docs/method.md).

Public names are imported lazily so that `import ga.data` or the `ga` CLI does not pay for torch/transformers
imports it does not use.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "GenerativeAdapterConfig": "ga.config",
    "GenerativeAdapter": "ga.model",
    "GenerativeAdapterOutput": "ga.model",
    "AdapterState": "ga.state",
    "export_peft": "ga.export",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ga' has no attribute {name!r}")
