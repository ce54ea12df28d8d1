"""What the generator computes for one adapted linear map, and the passes that carry its delta into the base model.

A frozen base model's targeted linear maps (o_proj by default) get a delta generated from context, as in the
Generative Adapter paper:

    H  = input of decoder layer l for the context tokens       (tokens x d_h)
    S  = (RMSNorm_g(H) A2^T)^T (RMSNorm_g(H) A3^T)              (d_r x d_r, float32, summed over tokens;
                                                                 RMSNorm epsilon `adapter.norm_eps`)
    N  = normalize(S)                                           (U_r V_r^T for `norm: svd`)
    dy = s * B N^T A1 x                                         (s = alpha / d_r)

A *pass* says what one forward of the base model adds to each targeted map's output:

  WindowPass     one forward over B x S windows (training and context encoding): every window's states are
                 summed into prefix sums over the window axis, so window i's adapter is built from windows
                 0 .. prefix[i]-1 in O(S) memory. Windows that share a prefix share its normalized state, which
                 is computed once (one SVD per distinct prefix, not per window).
  FixedAdapter   the delta of an encoded AdapterState as rank-r LoRA factors (`adapted(state)`, `generate`).

ga.model attaches these to a Hugging Face model with forward hooks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ga.config import GenerativeAdapterConfig
from ga.normalize import normalize_state

# A1, A2 and A3 start as the authors' do: Kaiming normal, fan-in, with the negative slope a = sqrt(5) of PyTorch's
# default nn.Linear init, i.e. std = sqrt(2 / (1 + a^2)) / sqrt(fan_in) = 1 / sqrt(3 fan_in). kaiming_normal_'s own
# default (a = 0) is sqrt(6) ~ 2.45x larger, which through A1 acts like alpha 157 instead of 64 early in training.
PROJECTION_INIT_SLOPE = math.sqrt(5)


def projection_weight(out_features: int, in_features: int) -> nn.Parameter:
    """A (out_features x in_features) generator projection drawn from torch's global generator (seeded by
    torch.manual_seed), with the authors' variance 1 / (3 in_features)."""
    weight = torch.empty(out_features, in_features)
    nn.init.kaiming_normal_(weight, a=PROJECTION_INIT_SLOPE, mode="fan_in")
    return nn.Parameter(weight)


class ContextProjection(nn.Module):
    """Context side of one module's generator: RMSNorm weight g (epsilon `norm_eps`), key map A2, value map A3."""

    def __init__(self, d_hidden: int, inter_size: int, norm_eps: float):
        super().__init__()
        self.norm_eps = norm_eps
        self.norm_weight = nn.Parameter(torch.ones(d_hidden))
        self.A2 = projection_weight(inter_size, d_hidden)
        self.A3 = projection_weight(inter_size, d_hidden)

    @torch.no_grad()
    def init_from_attention(self, layer: nn.Module) -> None:
        """Start as the layer's own attention keys and values (`context_init: base_kv`): A2, A3 = rows 0 .. d_r-1 of
        k_proj and v_proj, the gain = the layer's input RMSNorm weight, so k_t and v_t are the base model's
        (pre-RoPE) key and value of context token t, restricted to the first d_r channels."""
        modules = dict(layer.named_modules())
        found = {name.rsplit(".", 1)[-1]: module for name, module in modules.items()}
        missing = [name for name in ("k_proj", "v_proj", "input_layernorm") if name not in found]
        if missing:
            raise ValueError(
                f"context_init base_kv: the decoder layer has no {', '.join(missing)} "
                f"({type(layer).__name__}); use context_init: random"
            )
        d_r = self.A2.shape[0]
        for weight, projection in ((self.A2, found["k_proj"]), (self.A3, found["v_proj"])):
            if projection.out_features < d_r:
                raise ValueError(
                    f"context_init base_kv: inter_size {d_r} exceeds the {projection.out_features} "
                    "output channels of the layer's key/value projections"
                )
            weight.copy_(projection.weight[:d_r].float())
        self.norm_weight.copy_(found["input_layernorm"].weight.float())

    def forward(self, hidden: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
        """Per-sequence state sum_t k_t v_t^T over unmasked tokens: (n, L, d_h) -> (n, d_r, d_r) float32."""
        dtype = hidden.dtype
        # eps given explicitly: F.rms_norm's default is float32's machine epsilon (1.19e-7), not the authors' 1e-6
        normed = F.rms_norm(hidden, (hidden.shape[-1],), self.norm_weight.to(dtype), eps=self.norm_eps)
        keys = F.linear(normed, self.A2.to(dtype))
        values = F.linear(normed, self.A3.to(dtype)) * token_mask.unsqueeze(-1).to(dtype)
        return keys.float().transpose(1, 2) @ values.float()


class DeltaProjection(nn.Module):
    """Output side of one module's generator: input map A1 and output map B (zero-initialised)."""

    def __init__(self, d_in: int, d_out: int, inter_size: int, scale: float):
        super().__init__()
        self.scale = scale
        self.A1 = projection_weight(inter_size, d_in)
        self.B = nn.Parameter(torch.zeros(d_out, inter_size))  # zero: the initial delta is exactly 0

    def forward(self, x: torch.Tensor, normalized: torch.Tensor) -> torch.Tensor:
        """s * B N^T A1 x for each sequence with its own N: x (n, L, d_in), normalized (n, d_r, d_r)."""
        dtype = x.dtype
        inner = F.linear(x, self.A1.to(dtype)) @ normalized.to(dtype)
        return F.linear(inner, self.B.to(dtype)) * self.scale


class ModuleGenerator(nn.Module):
    """Generator parameters for one adapted linear map. The two halves are called as modules (not just read from)
    so that parameter-sharding engines such as ZeRO-3 gather their weights on use."""

    def __init__(self, d_in: int, d_out: int, d_hidden: int, inter_size: int, scale: float, norm_eps: float):
        super().__init__()
        self.context = ContextProjection(d_hidden, inter_size, norm_eps)
        self.delta = DeltaProjection(d_in, d_out, inter_size, scale)

    @property
    def A1(self) -> nn.Parameter:
        return self.delta.A1

    @property
    def B(self) -> nn.Parameter:
        return self.delta.B


EMPTY_KEY = -1  # the key of every empty window; sorts before all (batch element, prefix) keys


@dataclass
class DistinctPrefixes:
    """The distinct (batch element, prefix) pairs of a (B, S) prefix layout. Windows with the same pair are adapted by
    the same merged state, so it is normalized once and gathered to them: the pretraining layout of n completion and
    n reconstruction windows has prefixes [0 .. n-1, 1 .. n], so n distinct non-empty states instead of 2n.

    Without states of earlier chunks, prefix 0 is the empty state, which normalizes to exactly zero in every mode
    (docs/method.md#normalization): it takes no normalization at all, only a zero row."""

    batch_index: torch.Tensor  # (D,) batch element of each distinct state to normalize
    prefix: torch.Tensor  # (D,) its prefix value
    window_rows: torch.Tensor  # (B*S,) each window's row in [zero state (if has_empty), the D normalized states]
    has_empty: bool

    @classmethod
    def of(cls, prefix: torch.Tensor, empty_is_zero: bool) -> DistinctPrefixes:
        batch, windows = prefix.shape
        values = windows + 1  # prefix values lie in [0, windows]
        keys = torch.arange(batch, device=prefix.device).unsqueeze(1) * values + prefix
        if empty_is_zero:
            keys = keys.masked_fill(prefix == 0, EMPTY_KEY)
        distinct, window_rows = torch.unique(keys.flatten(), sorted=True, return_inverse=True)
        has_empty = bool(distinct[0] == EMPTY_KEY)
        if has_empty:
            distinct = distinct[1:]
        return cls(distinct // values, distinct % values, window_rows, has_empty)


@dataclass
class WindowPass:
    """Layout of one forward over (B, S, L) windows, and the adapters built for it layer by layer."""

    batch: int
    windows: int
    token_mask: torch.Tensor  # (B*S, L), 1 for real tokens
    prefix: torch.Tensor  # (B, S) long: window i's adapter sums windows 0 .. prefix[i]-1
    initial: dict[str, torch.Tensor] | None = None  # states of earlier chunks, added to every prefix sum
    collect_totals: bool = False
    normalize_each_window: bool = False  # reference path (tests, benchmarks): one normalization per window
    normalized: dict[str, torch.Tensor] = field(default_factory=dict)  # (B*S, d_r, d_r) per module
    totals: dict[str, torch.Tensor] = field(default_factory=dict)  # (B, d_r, d_r) per module
    finished: bool = False
    distinct: DistinctPrefixes = field(init=False)

    def __post_init__(self):
        self.distinct = DistinctPrefixes.of(self.prefix, empty_is_zero=self.initial is None)

    def build_adapters(
        self, name: str, generator: ModuleGenerator, hidden: torch.Tensor, config: GenerativeAdapterConfig
    ) -> None:
        """Every window's normalized state N for module `name`, from the input H of its decoder layer."""
        d_r = config.inter_size
        states = generator.context(hidden, self.token_mask).view(self.batch, self.windows, d_r, d_r)
        initial = None if self.initial is None else self.initial[name].to(states.device)
        if self.normalize_each_window:
            merged, total = merge_prefix_states(states, self.prefix, initial)
            self.normalized[name] = normalize_state(merged, config).reshape(-1, d_r, d_r)
        else:
            distinct = self.distinct
            merged, total = merge_prefix_states(states, distinct.prefix, initial, distinct.batch_index)
            normalized = normalize_state(merged, config)
            if distinct.has_empty:
                normalized = torch.cat([normalized.new_zeros(1, d_r, d_r), normalized])
            self.normalized[name] = normalized[distinct.window_rows]
        if self.collect_totals:
            # A copy: `total` may be a view into the (B, S, d_r, d_r) cumulative sum, which it would keep alive in
            # every layer until the encoded state is gone (S times the memory of the state itself).
            self.totals[name] = total.detach().clone()

    def delta(self, name: str, generator: ModuleGenerator, x: torch.Tensor) -> torch.Tensor:
        """dy of module `name` for the input x of every window, each under its own adapter."""
        return generator.delta(x, self.normalized[name])


@dataclass
class FixedAdapter:
    """LoRA factors of an encoded state, applied to every token: dy = s * (x A^T) B^T."""

    factors: dict[str, tuple[torch.Tensor, torch.Tensor]]
    scale: float

    def delta(self, name: str, x: torch.Tensor) -> torch.Tensor:
        lora_a, lora_b = self.factors[name]
        return F.linear(F.linear(x, lora_a), lora_b) * self.scale


def merge_prefix_states(
    states: torch.Tensor,
    prefix: torch.Tensor,
    initial: torch.Tensor | None = None,
    batch_index: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Merged adapter states M = initial + sum_{j < prefix} states[b, j], and the total over all windows.

    `states` is (B, S, d_r, d_r). By default `prefix` is (B, S), one value per window, and M is (B, S, d_r, d_r);
    with `batch_index` of the same shape as `prefix`, M holds one merged state per (batch_index, prefix) pair.
    One cumulative sum over the window axis, taken in place (`states` is consumed), then a gather: O(S) extra
    memory, never the S x S x d_r x d_r expansion of the authors' code.
    """
    batch = states.shape[0]
    cumulative = states.cumsum_(dim=1)  # cumulative[:, k] = S_0 + ... + S_k
    if batch_index is None:
        batch_index = torch.arange(batch, device=states.device).unsqueeze(1)
    merged = cumulative[batch_index, (prefix - 1).clamp_min(0)]
    merged.masked_fill_((prefix == 0)[..., None, None], 0.0)
    total = cumulative[:, -1]
    if initial is not None:
        merged.add_(initial)
        total = total + initial
    return merged, total


def window_prefix(adapter_prefix, batch: int, windows: int, device) -> torch.Tensor:
    """A WindowPass's (B, S) prefix from (S,) or (B, S) values; by default (None) window i is adapted by all windows
    before it."""
    if adapter_prefix is None:
        adapter_prefix = torch.arange(windows, device=device)
    adapter_prefix = torch.as_tensor(adapter_prefix, device=device, dtype=torch.long)
    if adapter_prefix.dim() == 1:
        adapter_prefix = adapter_prefix.unsqueeze(0).expand(batch, windows)
    if adapter_prefix.shape != (batch, windows):
        raise ValueError(
            f"adapter_prefix must be (S,) or (B, S) = ({batch}, {windows}), got {tuple(adapter_prefix.shape)}"
        )
    if adapter_prefix.min() < 0 or adapter_prefix.max() > windows:
        raise ValueError(f"adapter_prefix values must lie in [0, {windows}]")
    return adapter_prefix
