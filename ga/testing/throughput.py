"""The GPU throughput measurements' shared pieces (benchmarks/gpu.py, benchmarks/train.py): model shapes with random
weights, the paper's example layout, the FLOP count of one optimizer step (the formula is spelt out in
benchmarks/gpu.py's docstring) and the training loop without its end-of-run validation and checkpoint."""

from __future__ import annotations

import gc
from dataclasses import dataclass, field

import torch

import ga
from ga.model import decoder_layers
from ga.train.loop import Trainer

TFLOP = 1e12
ZERO2_CONFIG = "resources/deepspeed/zero2.json"
"""The ZeRO-2 settings the training config points at by default."""
SEED = 0


@dataclass(frozen=True)
class Layout:
    """The pretraining example layout and the generator shape of a run."""

    window: int  # L, tokens per window
    completion_windows: int  # n
    reconstruction_windows: int  # m (S = n + m windows per example)
    inter_size: int  # d_r
    rank: int  # r
    target_modules: tuple[str, ...] = ("o_proj",)

    @property
    def windows(self) -> int:
        return self.completion_windows + self.reconstruction_windows


PAPER_LAYOUT = Layout(window=1024, completion_windows=8, reconstruction_windows=8, inter_size=1024, rank=128)
"""The Generative Adapter paper's pretraining layout for Mistral-7B."""
TINY_LAYOUT = Layout(window=16, completion_windows=2, reconstruction_windows=2, inter_size=16, rank=4)
"""--tiny: a few seconds per run on one CPU core."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    family: str  # "llama" or "mistral": which Transformers config class builds it
    config: dict = field(hash=False)


SMOLLM2_135M = ModelSpec(
    "smollm2_135m",
    "SmolLM2-135M-shaped Llama",
    "llama",
    dict(
        vocab_size=49152,
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        max_position_embeddings=8192,
        rope_theta=100000.0,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
    ),
)
MISTRAL_7B = ModelSpec(
    "mistral_7b",
    "Mistral-7B-shaped model",
    "mistral",
    dict(
        vocab_size=32000,
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        max_position_embeddings=32768,
        sliding_window=4096,
        rope_theta=10000.0,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
    ),
)
TINY_LLAMA = ModelSpec(
    "tiny_llama",
    "tiny Llama (--tiny)",
    "llama",
    dict(
        vocab_size=512,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
    ),
)
TINY_MISTRAL = ModelSpec(
    "tiny_mistral",
    "tiny Mistral (--tiny)",
    "mistral",
    dict(
        vocab_size=512,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        sliding_window=512,
        tie_word_embeddings=False,
    ),
)
MODELS = {spec.name: spec for spec in (SMOLLM2_135M, MISTRAL_7B, TINY_LLAMA, TINY_MISTRAL)}


FLOP_FORMULA = (
    "model FLOPs/step = 4*N*T + 3*A + 3*G; recompute = 2*N_layers*T + A + G_delta (HFU only). "
    "T = positions per step (micro x accum x S x L); N = weights of the base's matmuls (decoder-layer linears + LM "
    "head; frozen: forward 2NT + activation-gradient backward 2NT, no weight gradients); "
    "A = causal attention forward 2*n_layers*d_attn*(L+1)*T (backward = 2A); "
    "G = generator forward T*sum_modules[4*d_h*d_r + 2*d_r^2 + 2*d_in*d_r + 2*d_r^2 + 2*d_r*d_out] (trains: 3G); "
    "G_delta = its o_proj-hook part (A1, .N, B). SVD/QR, norms, softmax, RoPE, cross-entropy, optimizer not counted. "
    "MFU = model FLOPs / step time / peak; HFU adds the recompute."
)


def flops_per_step(model: ga.GenerativeAdapter, layout: Layout, positions: int) -> dict[str, float]:
    """The FLOP terms of FLOP_FORMULA (explained in benchmarks/gpu.py's docstring) for one optimizer step over
    `positions` positions."""
    base = model.base_model
    config = base.config
    layers = decoder_layers(base)
    n_layers_linear = sum(
        m.weight.numel() for layer in layers for m in layer.modules() if isinstance(m, torch.nn.Linear)
    )
    n_head = base.get_output_embeddings().weight.numel()
    n_base = n_layers_linear + n_head
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    d_attn = config.num_attention_heads * head_dim
    attention_fwd = 2 * len(layers) * d_attn * (layout.window + 1) * positions

    d_h, d_r = config.hidden_size, layout.inter_size
    modules = dict(base.named_modules())
    context_per_token = delta_per_token = 0
    for name in model.module_names:
        linear = modules[name]
        context_per_token += 4 * d_h * d_r + 2 * d_r * d_r
        delta_per_token += 2 * linear.in_features * d_r + 2 * d_r * d_r + 2 * d_r * linear.out_features
    generator_fwd = (context_per_token + delta_per_token) * positions
    generator_delta_fwd = delta_per_token * positions

    model_flops = 4 * n_base * positions + 3 * attention_fwd + 3 * generator_fwd
    recompute_flops = 2 * n_layers_linear * positions + attention_fwd + generator_delta_fwd
    return {
        "base_matmul_weights": n_base,
        "base_layer_linear_weights": n_layers_linear,
        "attention_fwd_flops": float(attention_fwd),
        "generator_fwd_flops": float(generator_fwd),
        "model_flops": float(model_flops),
        "recompute_flops": float(recompute_flops),
    }


def build_base(spec: ModelSpec, device: torch.device, dtype: torch.dtype):
    """Random weights, created on `device` in `dtype` (a 7B model never exists in fp32 on the host)."""
    import transformers
    from packaging.version import Version
    from transformers import AutoModelForCausalLM, LlamaConfig, MistralConfig

    config = {"llama": LlamaConfig, "mistral": MistralConfig}[spec.family](**spec.config)
    # Transformers 4.56 renamed from_config's torch_dtype to dtype (the old name is deprecated since).
    dtype_kwarg = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"
    torch.manual_seed(SEED)
    with torch.device(device):
        return AutoModelForCausalLM.from_config(config, attn_implementation="sdpa", **{dtype_kwarg: dtype})


class ThroughputTrainer(Trainer):
    """The loop's Trainer with its end-of-run validation and checkpoint left out (see the module docstring)."""

    def validate(self, step: int) -> None:
        self.last_validated = step

    def checkpoint(self, step: int) -> None:
        self.last_saved = step


def free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
