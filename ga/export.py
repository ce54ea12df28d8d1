"""Export a generated adapter as a standard PEFT LoRA directory, for any serving stack that loads PEFT."""

from __future__ import annotations

from pathlib import Path

import torch
from peft import LoraConfig
from safetensors.torch import save_file

from ga.io import atomic_file
from ga.model import GenerativeAdapter
from ga.state import AdapterState

PEFT_CONFIG = "adapter_config.json"
"""The file `LoraConfig.save_pretrained` writes."""
PEFT_WEIGHTS = "adapter_model.safetensors"


def export_peft(gam: GenerativeAdapter, state: AdapterState, out_dir: str | Path) -> Path:
    """Write `state`'s delta as a PEFT LoRA adapter of `gam.base_model`.

    The factors are `gam.lora(state)`, computed from the state's sums by the generator (LoRA factors saved with a
    loaded state are not consulted: the generator given is the one that defines the delta).

    Every adapted module gets factors of one common rank R (r for `norm: svd`, padded with zero rows/columns when
    a state keeps fewer directions; d_r otherwise). PEFT scales by lora_alpha / R, so lora_alpha = s * R.
    """
    out_dir = Path(out_dir)
    factors = gam.lora(state)
    export_rank = max(a.shape[0] for a, _ in factors.values())
    tensors = {}
    for name, (lora_a, lora_b) in factors.items():
        pad = export_rank - lora_a.shape[0]
        lora_a = torch.nn.functional.pad(lora_a, (0, 0, 0, pad))
        lora_b = torch.nn.functional.pad(lora_b, (0, pad))
        tensors[f"base_model.model.{name}.lora_A.weight"] = lora_a.contiguous().cpu()
        tensors[f"base_model.model.{name}.lora_B.weight"] = lora_b.contiguous().cpu()
    config = LoraConfig(
        r=export_rank,
        lora_alpha=state.scale * export_rank,
        target_modules=list(factors),
        lora_dropout=0.0,
        bias="none",
        task_type="CAUSAL_LM",
        base_model_name_or_path=getattr(gam.base_model.config, "_name_or_path", None),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(str(out_dir))
    with atomic_file(out_dir / PEFT_WEIGHTS) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    return out_dir
