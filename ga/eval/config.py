"""Config pieces every evaluation family shares: the generative adapter's encode strategies, the generation keys
(`ga.eval.methods.generation_settings` reads them) and a baseline's LoRA training run. Each family's own section is `ga.eval.<family>.config`; what their sections have in common beyond
these (the method registry, the per-method resources, the name checks) is `ga.eval.family`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ga.section import ConfigSection, setting

ENCODE_STRATEGIES = ("sequential", "streaming")


def max_new_tokens_setting(default: int) -> Any:
    """A section's `max_new_tokens`."""
    return setting(default, "most tokens generated per answer (greedy; generation also stops at a newline)", minimum=1)


def batch_size_setting(items: str) -> Any:
    """A section's `batch_size`; items: what the family generates answers to (questions, queries)."""
    return setting(32, f"{items} generated together (one left-padded batch with a KV cache)", minimum=1)


def max_batch_tokens_setting(why: str = "") -> Any:
    """A section's `max_batch_tokens`; why: what the limit is for in this family, ending "; " (or nothing)."""
    return setting(
        32768,
        f"at most this many padded prompt positions in one generation batch ({why}null: only batch_size limits a batch)",
        minimum=1,
    )


@dataclass
class LoraTrainingConfig(ConfigSection):
    """A PEFT LoRA trained on the base model (a baseline's own training run, on the evaluation machine)."""

    rank: int = setting(16, "LoRA rank", minimum=1)
    alpha: float = setting(32, "LoRA alpha (scale alpha / rank)", exclusive_minimum=0)
    dropout: float = setting(0.0, "LoRA dropout", minimum=0, exclusive_maximum=1)
    target_modules: list[str] = setting(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        "base-model linear layers that get a LoRA",
        min_items=1,
    )
    lr: float = setting(1e-4, "peak learning rate of AdamW (constant after a linear warmup)", exclusive_minimum=0)
    warmup_steps: int = setting(0, "linear warmup steps", minimum=0)
    epochs: int = setting(3, "passes over the training text", minimum=1)
    max_steps: int | None = setting(None, "stop after this many optimizer steps (null: after `epochs`)", minimum=1)
    batch_size: int = setting(8, "sequences per optimizer step", minimum=1)
    max_tokens: int = setting(
        512, "tokens per training sequence (longer text is cut into sequences of this size)", minimum=8
    )
