"""Tiny randomly initialized base models of the supported families, for fast exact tests."""

from __future__ import annotations

import torch
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

import ga

VOCAB = 128
COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=512,
)
FAMILIES = {
    "llama": (LlamaConfig, LlamaForCausalLM, {}),
    "mistral": (MistralConfig, MistralForCausalLM, {"sliding_window": None}),
    "qwen2": (Qwen2Config, Qwen2ForCausalLM, {}),
}


def tiny_base(family: str = "llama", seed: int = 0, dtype=torch.float32, attn: str = "sdpa"):
    config_cls, model_cls, extra = FAMILIES[family]
    torch.manual_seed(seed)
    config = config_cls(**COMMON, **extra)
    config._attn_implementation = attn
    return model_cls(config).to(dtype).eval()


def tiny_adapter_config(**overrides) -> ga.GenerativeAdapterConfig:
    values = dict(inter_size=32, rank=8, alpha=16.0, target_modules=["o_proj"], window=16)
    values.update(overrides)
    return ga.GenerativeAdapterConfig(**values)


def randomize_generator(gam: ga.GenerativeAdapter, seed: int = 1, std: float = 0.2) -> ga.GenerativeAdapter:
    """Non-zero B (and perturbed norm weights) so the generated delta actually changes the model."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in gam.generators.named_parameters():
            noise = torch.randn(param.shape, generator=generator) * std
            if name.endswith("norm_weight"):
                param.add_(noise)
            elif name.endswith(".B"):
                param.copy_(noise)
    return gam


def tiny_gam(family: str = "llama", seed: int = 0, **config_overrides) -> ga.GenerativeAdapter:
    return randomize_generator(ga.GenerativeAdapter(tiny_base(family, seed), tiny_adapter_config(**config_overrides)))
