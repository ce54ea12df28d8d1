"""AdapterState: an encoded context, independent of context length; a plain value.

Per adapted module it holds the float32 d_r x d_r sum S = sum_t k_t v_t^T and the number of context tokens
summed. States of consecutive chunks add. Turning a state into weights needs the generator's A1 and B:
`GenerativeAdapter.lora(state)`. A state file may also carry those rank-r LoRA factors, so that it serves without
the generator; a state loaded from such a file keeps them in `lora`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ga.config import GenerativeAdapterConfig
from ga.io import atomic_file

LoraFactors = dict[str, tuple[torch.Tensor, torch.Tensor]]
"""{module_name: (lora_A [r x d_in], lora_B [d_out x r])} in float32, with W_delta = scale * lora_B @ lora_A."""

_SUM_PREFIX = "sum."
_LORA_A_PREFIX = "lora_A."
_LORA_B_PREFIX = "lora_B."
_FORMAT = "ga.AdapterState/1"


@dataclass
class AdapterState:
    sums: dict[str, torch.Tensor]
    counts: dict[str, int]
    config: GenerativeAdapterConfig
    lora: LoraFactors | None = field(default=None, repr=False, compare=False)  # as saved with the state, if any
    origin: dict | None = field(default=None, compare=False)
    """What the state was made from and with (JSON values; `ga adapt` records the generator, the base model and the
    context files, so that using it later can check they fit); saved with the state, None if not recorded."""

    @property
    def scale(self) -> float:
        """s = alpha / d_r: the delta is s * lora_B @ lora_A."""
        return self.config.scale

    @property
    def module_names(self) -> list[str]:
        return list(self.sums)

    @property
    def num_tokens(self) -> int:
        return next(iter(self.counts.values()), 0)

    def __add__(self, other: AdapterState) -> AdapterState:
        """The state of both contexts. Saved LoRA factors are dropped: they do not describe the sum."""
        if set(self.sums) != set(other.sums):
            raise ValueError("cannot add AdapterStates of different modules")
        return AdapterState(
            sums={k: self.sums[k] + other.sums[k] for k in self.sums},
            counts={k: self.counts[k] + other.counts[k] for k in self.counts},
            config=self.config,
            origin=self.origin if self.origin == other.origin else None,
        )

    def save(self, path: str | Path, lora: LoraFactors | None = None) -> None:
        """Write the state as one safetensors file: sums and the LoRA factors `lora` (by default the state's own
        saved ones, if any; pass `gam.lora(state)` so that the file serves without the generator) as tensors,
        counts and config as metadata."""
        lora = self.lora if lora is None else lora
        if lora is not None and set(lora) != set(self.sums):
            raise ValueError(
                f"LoRA factors for modules {sorted(lora)[:3]}... do not match the state's {sorted(self.sums)[:3]}..."
            )
        tensors = {_SUM_PREFIX + name: s.detach().float().contiguous().cpu() for name, s in self.sums.items()}
        for name, (lora_a, lora_b) in (lora or {}).items():
            tensors[_LORA_A_PREFIX + name] = lora_a.contiguous().cpu()
            tensors[_LORA_B_PREFIX + name] = lora_b.contiguous().cpu()
        metadata = {
            "format": _FORMAT,
            "counts": json.dumps(self.counts),
            "config": json.dumps(self.config.to_dict()),
        }
        if self.origin is not None:
            metadata["origin"] = json.dumps(self.origin)
        with atomic_file(path) as tmp:
            save_file(tensors, str(tmp), metadata=metadata)

    @classmethod
    def load(cls, path: str | Path) -> AdapterState:
        """The state saved at `path`, with its LoRA factors in `lora` if the file has them (else None)."""
        path = Path(path)
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        if metadata.get("format") != _FORMAT:
            raise ValueError(f"{path}: not an AdapterState file (format {metadata.get('format')!r})")
        tensors = load_file(str(path))

        def strip(prefix: str) -> dict[str, torch.Tensor]:
            return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

        sums, lora_a, lora_b = strip(_SUM_PREFIX), strip(_LORA_A_PREFIX), strip(_LORA_B_PREFIX)
        if lora_a and not set(lora_a) == set(lora_b) == set(sums):
            raise ValueError(f"{path}: LoRA factors do not cover exactly the state's modules")
        return cls(
            sums=sums,
            counts={k: int(v) for k, v in json.loads(metadata["counts"]).items()},
            config=GenerativeAdapterConfig.from_dict(json.loads(metadata["config"])),
            lora={name: (lora_a[name], lora_b[name]) for name in lora_a} or None,
            origin=json.loads(metadata["origin"]) if "origin" in metadata else None,
        )
