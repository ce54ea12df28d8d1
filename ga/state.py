"""AdapterState: the encoded context (SPEC §1.3), independent of context length.

Per adapted module it holds the float32 d_r x d_r sum S = sum_t k_t v_t^T and the number of context tokens
summed. States of consecutive chunks add. Turning a state into weights needs the generator's A1 and B, so a
state is *bound* to the GenerativeAdapter that produced it (or that it is loaded with) for `to_lora()`.
A saved state also carries its rank-r LoRA factors, so a loaded state serves without the generator.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import load_file, save_file

from ga.config import GenerativeAdapterConfig
from ga.normalize import lora_factors

if TYPE_CHECKING:
    from ga.model import GenerativeAdapter

_SUM_PREFIX = "sum."
_LORA_A_PREFIX = "lora_A."
_LORA_B_PREFIX = "lora_B."
_FORMAT = "ga.AdapterState/1"


@dataclass
class AdapterState:
    sums: dict[str, torch.Tensor]
    counts: dict[str, int]
    config: GenerativeAdapterConfig
    generator: "GenerativeAdapter | None" = field(default=None, repr=False, compare=False)
    saved_lora: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = field(default=None, repr=False, compare=False)

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

    def __add__(self, other: "AdapterState") -> "AdapterState":
        if set(self.sums) != set(other.sums):
            raise ValueError("cannot add AdapterStates of different modules")
        return AdapterState(
            sums={k: self.sums[k] + other.sums[k] for k in self.sums},
            counts={k: self.counts[k] + other.counts[k] for k in self.counts},
            config=self.config,
            generator=self.generator or other.generator,
        )

    def bind(self, generator: "GenerativeAdapter") -> "AdapterState":
        """Attach the generator whose A1/B turn this state into weights; checks that it fits."""
        generator.check_state(self)
        self.generator = generator
        return self

    @torch.no_grad()
    def to_lora(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """{module_name: (lora_A [r x d_in], lora_B [d_out x r])} in float32, with W_delta = scale * B @ A."""
        if self.generator is None:
            if self.saved_lora is not None:
                return dict(self.saved_lora)
            raise RuntimeError(
                "AdapterState.to_lora() needs the generator that made it (or a state file saved with its LoRA "
                "factors): use AdapterState.load(path, generator=gam) or state.bind(gam)"
            )
        factors = {}
        for name, state in self.sums.items():
            module_generator = self.generator.generator_for(name)
            factors[name] = lora_factors(state, module_generator.A1, module_generator.B, self.config)
        return factors

    def save(self, path: str | Path, with_lora: bool = True) -> None:
        """Write the state as one safetensors file: sums (and, when bound, the rank-r LoRA factors, so the file
        serves on its own) as tensors; counts and config as metadata."""
        path = Path(path)
        tensors = {_SUM_PREFIX + name: s.detach().float().contiguous().cpu() for name, s in self.sums.items()}
        if with_lora and (self.generator is not None or self.saved_lora is not None):
            for name, (lora_a, lora_b) in self.to_lora().items():
                tensors[_LORA_A_PREFIX + name] = lora_a.contiguous().cpu()
                tensors[_LORA_B_PREFIX + name] = lora_b.contiguous().cpu()
        metadata = {
            "format": _FORMAT,
            "counts": json.dumps(self.counts),
            "config": json.dumps(self.config.to_dict()),
        }
        tmp = path.with_name(path.name + ".tmp")
        save_file(tensors, str(tmp), metadata=metadata)
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path, generator: "GenerativeAdapter | None" = None) -> "AdapterState":
        from safetensors import safe_open

        path = Path(path)
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        if metadata.get("format") != _FORMAT:
            raise ValueError(f"{path}: not an AdapterState file (format {metadata.get('format')!r})")
        tensors = load_file(str(path))
        def strip(prefix: str) -> dict[str, torch.Tensor]:
            return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

        sums, lora_a, lora_b = strip(_SUM_PREFIX), strip(_LORA_A_PREFIX), strip(_LORA_B_PREFIX)
        state = cls(
            sums=sums,
            saved_lora={name: (lora_a[name], lora_b[name]) for name in lora_a} or None,
            counts={k: int(v) for k, v in json.loads(metadata["counts"]).items()},
            config=GenerativeAdapterConfig.from_dict(json.loads(metadata["config"])),
        )
        if generator is not None:
            state.bind(generator)
        return state
