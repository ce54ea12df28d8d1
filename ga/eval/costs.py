"""What contextualizing and answering cost (docs/method.md#costs): analytic FLOPs, wall-clock, peak memory, storage.

FLOPs count matrix multiplies only, 2 m n k for an (m x k) @ (k x n) product, for a Llama-shaped decoder read from
its Hugging Face config (Llama, Mistral, Qwen2, SmolLM2):

  per decoder layer and token   q, k, v, o projections (grouped-query: k and v map to kv_heads x head_dim),
                                MLP gate, up and down
  attention                     scores Q K^T and values P V: 2 x 2 x heads x head_dim per query-key pair; a query
                                attends to every cached token and to the new tokens up to itself (causal), so
                                n new tokens after c cached ones make n c + n (n + 1) / 2 pairs. `causal=False`
                                counts the dense n x (c + n) rectangle that an attention kernel without block
                                skipping (SDPA's math path, what FlopCounterMode assumes) multiplies.
  LM head                       for the tokens whose logits are computed (a training or encoding forward: all of
                                them; generation: the last position of each forward)
  not counted                   embedding lookups, norms, RoPE, softmax, activations, residual adds, sampling:
                                elementwise work, a few percent at most, which FlopCounterMode does not count either.

On top of the base model:
  generated adapter (encoding)  per position and adapted map: context side 4 d_h d_r (A2, A3) + 2 d_r^2 (k v^T);
                                delta side 2 d_in d_r (A1) + 2 d_r^2 (N) + 2 d_r d_out (B) on every window, the
                                first one's zero adapter included (the pass computes it); plus 2 d_r^3 per
                                normalized state (U_r V_r^T) and, once per context, the LoRA factors
                                (2 r d_r (d_in + d_out)). The SVDs themselves are not counted (not matmuls).
  a LoRA applied unmerged       2 r (d_in + d_out) per token and adapted map (x A^T, then B).
  LoRA training                 frozen base: forward plus activation gradients, 2x its matmuls; attention 3x
                                (backward is two products per forward product); the LoRA's own products 3x
                                (forward, activation and weight gradients). The optimizer is not counted.
  per query                     one forward over the prompt, then one forward per further generated token with a
                                KV cache of everything before it.

Peak memory: on CUDA `torch.cuda.max_memory_allocated` (tensors only), reset per phase. On CPU the process's peak
resident set size (Linux VmHWM, reset per phase through /proc/self/clear_refs): everything resident, the model's
weights and the Python heap included, so it is an upper bound on what the phase needs; where VmHWM cannot be reset
the value is the peak since the process started, and `PeakMemory.kind` says which.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

MB = 2**20
LoraShape = tuple[int, int, int]
"""(d_in, d_out, rank) of one linear map with a LoRA."""


@dataclass(frozen=True)
class DecoderShape:
    """The shape of a Llama-shaped decoder that its FLOPs depend on."""

    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int

    @classmethod
    def of(cls, config) -> DecoderShape:
        """From a Hugging Face config (LlamaConfig and alike)."""
        heads = config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        return cls(
            layers=config.num_hidden_layers,
            hidden=config.hidden_size,
            intermediate=config.intermediate_size,
            heads=heads,
            kv_heads=getattr(config, "num_key_value_heads", None) or heads,
            head_dim=head_dim,
            vocab=config.vocab_size,
        )

    @property
    def linear_flops_per_token(self) -> int:
        """Matmul FLOPs of the decoder layers' linear maps for one token."""
        d, q, kv = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim
        attention = 2 * d * q + 2 * 2 * d * kv + 2 * q * d
        mlp = 3 * 2 * d * self.intermediate
        return self.layers * (attention + mlp)

    @property
    def kv_floats_per_token(self) -> int:
        """Floats of the KV cache for one token (keys and values of every layer)."""
        return 2 * self.layers * self.kv_heads * self.head_dim


def _shape(config) -> DecoderShape:
    return config if isinstance(config, DecoderShape) else DecoderShape.of(config)


def attention_pairs(new_tokens: int, cached_tokens: int = 0, causal: bool = True) -> int:
    """Query-key pairs of n new tokens after c cached ones (see the module doc)."""
    if causal:
        return new_tokens * cached_tokens + new_tokens * (new_tokens + 1) // 2
    return new_tokens * (cached_tokens + new_tokens)


def attention_flops(config, new_tokens: int, cached_tokens: int = 0, causal: bool = True) -> int:
    shape = _shape(config)
    return 2 * 2 * shape.layers * shape.heads * shape.head_dim * attention_pairs(new_tokens, cached_tokens, causal)


def forward_flops(
    config, new_tokens: int, cached_tokens: int = 0, logit_tokens: int | None = None, causal: bool = True
) -> int:
    """Matmul FLOPs of one forward of `new_tokens` tokens of one sequence after `cached_tokens` in its KV cache,
    with logits for `logit_tokens` of them (None: all)."""
    shape = _shape(config)
    logit_tokens = new_tokens if logit_tokens is None else logit_tokens
    return (
        new_tokens * shape.linear_flops_per_token
        + attention_flops(shape, new_tokens, cached_tokens, causal)
        + 2 * logit_tokens * shape.hidden * shape.vocab
    )


def generation_flops(config, prompt_tokens: int, new_tokens: int, causal: bool = True, cached_tokens: int = 0) -> int:
    """FLOPs of greedy generation with a KV cache: the prompt's forward (logits of its last position: the first new
    token) after `cached_tokens` already in the cache (a shared prefix run once), then one single-token forward per
    further new token."""
    total = forward_flops(config, prompt_tokens, cached_tokens, logit_tokens=1, causal=causal)
    for step in range(1, new_tokens):
        total += forward_flops(config, 1, cached_tokens + prompt_tokens + step - 1, logit_tokens=1, causal=causal)
    return total


def lora_delta_flops(shapes: Sequence[LoraShape], tokens: int) -> int:
    """FLOPs of unmerged LoRA deltas (x A^T, then B) over `tokens` tokens."""
    return tokens * sum(2 * rank * (d_in + d_out) for d_in, d_out, rank in shapes)


def lora_floats(shapes: Sequence[LoraShape]) -> int:
    """Floats of LoRA factors A (r x d_in) and B (d_out x r)."""
    return sum(rank * (d_in + d_out) for d_in, d_out, rank in shapes)


def lora_training_flops(config, sequence_lengths: Sequence[int], shapes: Sequence[LoraShape]) -> int:
    """FLOPs of training a LoRA on a frozen base over sequences of these lengths (every position's logits)."""
    shape = _shape(config)
    total = 0
    for length in sequence_lengths:
        base_matmuls = forward_flops(shape, length) - attention_flops(shape, length)
        total += 2 * base_matmuls + 3 * attention_flops(shape, length) + 3 * lora_delta_flops(shapes, length)
    return total


def kv_cache_floats(config, tokens: int) -> int:
    return tokens * _shape(config).kv_floats_per_token


# ---------------------------------------------------------------------------------------------- generative adapter
def generator_shapes(gam) -> list[tuple[int, int]]:
    """(d_in, d_out) of every map a GenerativeAdapter adapts."""
    modules = dict(gam.base_model.named_modules())
    return [(modules[name].in_features, modules[name].out_features) for name in gam.module_names]


def encode_chunks(tokens: int, window: int, strategy: str) -> tuple[list[int], int]:
    """(positions of each forward's windows, normalized states per adapted map) of `GenerativeAdapter.encode` with
    fixed chunking: sequential pads the last window and runs all windows in one forward, normalizing the states of
    prefixes 1 .. W-1 (prefix 0 is the zero adapter, no normalization); streaming runs each chunk unpadded,
    normalizing the running state once per chunk; concat is one window."""
    if strategy == "concat":
        return [tokens], 0
    windows = max(1, -(-tokens // window))
    if strategy == "sequential":
        return [window] * windows, windows - 1
    if strategy == "streaming":
        return [min(window, tokens - start) for start in range(0, tokens, window)] or [0], windows
    raise ValueError(f"unknown encode strategy {strategy!r} (FLOPs are counted for concat, sequential, streaming)")


def encode_flops(gam, tokens: int, strategy: str, window: int | None = None, causal: bool = True) -> int:
    """Matmul FLOPs of `gam.encode` over a context of `tokens` tokens plus forming the state's LoRA factors once
    (see the module doc; the SVDs are not counted)."""
    chunks, normalizations = encode_chunks(tokens, window or gam.config.window, strategy)
    return chunks_encode_flops(gam, chunks, normalizations, causal)


def session_streaming_chunks(session_tokens: Sequence[int], window: int) -> tuple[list[int], int]:
    """(positions of each forward, normalized states per adapted map) of encoding sessions one at a time, each cut
    into windows of at most `window` tokens, one `GenerativeAdapter.update` per window (ga/eval/msc/encoding.py):
    every update runs its window unpadded and normalizes the running state once."""
    chunks = [min(window, tokens - start) for tokens in session_tokens for start in range(0, tokens, window)]
    return chunks, len(chunks)


def chunks_encode_flops(gam, chunks: Sequence[int], normalizations: int, causal: bool = True) -> int:
    """Matmul FLOPs of encoding forwards over windows of these positions (`encode_chunks`,
    `session_streaming_chunks`), with `normalizations` normalized states per adapted map, plus forming the final
    state's LoRA factors once."""
    config = gam.config
    d_h, d_r, rank = gam.base_model.config.hidden_size, config.inter_size, config.rank
    maps = generator_shapes(gam)
    per_position = sum(
        4 * d_h * d_r + 2 * d_r * d_r + 2 * d_in * d_r + 2 * d_r * d_r + 2 * d_r * d_out for d_in, d_out in maps
    )
    normalize = 2 * d_r**3 if config.norm == "svd" and config.svd == "exact" else 0
    factors = sum(2 * rank * d_r * (d_in + d_out) for d_in, d_out in maps) if config.norm == "svd" else 0
    base = sum(forward_flops(gam.base_model.config, chunk, causal=causal) for chunk in chunks)
    return base + per_position * sum(chunks) + normalize * normalizations * len(maps) + factors


def generator_lora_shapes(gam) -> list[LoraShape]:
    """The rank-r LoRA of an encoded state (svd normalization; other norms give rank d_r)."""
    rank = gam.config.rank if gam.config.norm == "svd" else gam.config.inter_size
    return [(d_in, d_out, rank) for d_in, d_out in generator_shapes(gam)]


# ---------------------------------------------------------------------------------------------- time and memory
class PeakMemory:
    """Peak memory of the code run inside `with PeakMemory(device) as peak:`; `peak.megabytes` after the block."""

    def __init__(self, device=None):
        import torch

        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.megabytes: float | None = None
        self.kind = "cuda_max_memory_allocated" if self.device.type == "cuda" else "cpu_peak_rss"

    def __enter__(self) -> PeakMemory:
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        elif not _reset_peak_rss():
            self.kind = "cpu_peak_rss_since_start"
        return self

    def __exit__(self, *exc) -> None:
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.megabytes = torch.cuda.max_memory_allocated(self.device) / MB
        else:
            peak = _peak_rss_bytes()
            self.megabytes = None if peak is None else peak / MB


STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
RESET_PEAK_RSS = "5"
"""Writing 5 to clear_refs resets the process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0)."""


def _reset_peak_rss() -> bool:
    try:
        CLEAR_REFS.write_text(RESET_PEAK_RSS)
        return True
    except OSError:
        return False


def _peak_rss_bytes() -> int | None:
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class Stopwatch:
    """Wall-clock seconds of a `with` block; waits for queued CUDA work so that the time is the work's."""

    def __init__(self, device=None):
        self.device = device
        self.seconds = 0.0

    def _sync(self) -> None:
        import torch

        if self.device is not None and torch.device(self.device).type == "cuda":
            torch.cuda.synchronize(self.device)

    def __enter__(self) -> Stopwatch:
        self._sync()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self._sync()
        self.seconds = time.perf_counter() - self._start
