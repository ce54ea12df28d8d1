"""What the generator computes for one adapted linear map, and the passes that carry its delta into the base model.

A frozen base model's targeted linear maps (o_proj by default) get a delta generated from context, as in the
Generative Adapter paper:

    H  = input of decoder layer l for the context tokens       (tokens x d_h)
    S  = (RMSNorm_g(H) A2^T)^T (RMSNorm_g(H) A3^T)              (d_r x d_r, float32, summed over tokens)
    N  = normalize(S)                                           (U_r V_r^T for `norm: svd`)
    dy = s * B N^T A1 x                                         (s = alpha / d_r)

A *pass* says what one forward of the base model adds to each targeted map's output:

  WindowPass     one forward over B x S windows (training and context encoding): every window's states are
                 summed into prefix sums over the window axis, so window i's adapter is built from windows
                 0 .. prefix[i]-1 in O(S) memory.
  FixedAdapter   the delta of an encoded AdapterState as rank-r LoRA factors (`adapted(state)`, `generate`).

ga.model attaches these to a Hugging Face model with forward hooks.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ga.config import GenerativeAdapterConfig
from ga.normalize import normalize_state


class ContextProjection(nn.Module):
    """Context side of one module's generator: RMSNorm weight g, key map A2, value map A3."""

    def __init__(self, d_hidden: int, inter_size: int):
        super().__init__()
        self.norm_weight = nn.Parameter(torch.ones(d_hidden))
        self.A2 = nn.Parameter(nn.init.kaiming_normal_(torch.empty(inter_size, d_hidden)))
        self.A3 = nn.Parameter(nn.init.kaiming_normal_(torch.empty(inter_size, d_hidden)))

    def forward(self, hidden: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
        """Per-sequence state sum_t k_t v_t^T over unmasked tokens: (n, L, d_h) -> (n, d_r, d_r) float32."""
        dtype = hidden.dtype
        normed = F.rms_norm(hidden, (hidden.shape[-1],), self.norm_weight.to(dtype))
        keys = F.linear(normed, self.A2.to(dtype))
        values = F.linear(normed, self.A3.to(dtype)) * token_mask.unsqueeze(-1).to(dtype)
        return keys.float().transpose(1, 2) @ values.float()


class DeltaProjection(nn.Module):
    """Output side of one module's generator: input map A1 and output map B (zero-initialised)."""

    def __init__(self, d_in: int, d_out: int, inter_size: int, scale: float):
        super().__init__()
        self.scale = scale
        self.A1 = nn.Parameter(nn.init.kaiming_normal_(torch.empty(inter_size, d_in)))
        self.B = nn.Parameter(torch.zeros(d_out, inter_size))  # zero: the initial delta is exactly 0

    def forward(self, x: torch.Tensor, normalized: torch.Tensor) -> torch.Tensor:
        """s * B N^T A1 x for each sequence with its own N: x (n, L, d_in), normalized (n, d_r, d_r)."""
        dtype = x.dtype
        inner = F.linear(x, self.A1.to(dtype)) @ normalized.to(dtype)
        return F.linear(inner, self.B.to(dtype)) * self.scale


class ModuleGenerator(nn.Module):
    """Generator parameters for one adapted linear map. The two halves are called as modules (not just read from)
    so that parameter-sharding engines such as ZeRO-3 gather their weights on use."""

    def __init__(self, d_in: int, d_out: int, d_hidden: int, inter_size: int, scale: float):
        super().__init__()
        self.context = ContextProjection(d_hidden, inter_size)
        self.delta = DeltaProjection(d_in, d_out, inter_size, scale)

    @property
    def A1(self) -> nn.Parameter:
        return self.delta.A1

    @property
    def B(self) -> nn.Parameter:
        return self.delta.B


@dataclass
class WindowPass:
    """Layout of one forward over (B, S, L) windows, and the adapters built for it layer by layer."""

    batch: int
    windows: int
    token_mask: torch.Tensor  # (B*S, L), 1 for real tokens
    prefix: torch.Tensor  # (B, S) long: window i's adapter sums windows 0 .. prefix[i]-1
    initial: dict[str, torch.Tensor] | None = None  # states of earlier chunks, added to every prefix sum
    collect_totals: bool = False
    normalized: dict[str, torch.Tensor] = field(default_factory=dict)  # (B*S, d_r, d_r) per module
    totals: dict[str, torch.Tensor] = field(default_factory=dict)  # (B, d_r, d_r) per module
    finished: bool = False

    def build_adapters(
        self, name: str, generator: ModuleGenerator, hidden: torch.Tensor, config: GenerativeAdapterConfig
    ) -> None:
        """Every window's normalized state N for module `name`, from the input H of its decoder layer."""
        d_r = config.inter_size
        states = generator.context(hidden, self.token_mask).view(self.batch, self.windows, d_r, d_r)
        initial = None if self.initial is None else self.initial[name].to(states.device)
        merged, total = merge_prefix_states(states, self.prefix, initial)
        self.normalized[name] = normalize_state(merged, config).reshape(-1, d_r, d_r)
        if self.collect_totals:
            self.totals[name] = total.detach()

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
    states: torch.Tensor, prefix: torch.Tensor, initial: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Merged adapter states M[b, i] = initial + sum_{j < prefix[b, i]} states[b, j], and the total over all windows.

    One cumulative sum over the window axis, taken in place (`states` is consumed), then a gather: O(S) extra
    memory, never the S x S x d_r x d_r expansion of the authors' code.
    """
    batch = states.shape[0]
    cumulative = states.cumsum_(dim=1)  # cumulative[:, k] = S_0 + ... + S_k
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
        raise ValueError(f"adapter_prefix must be (S,) or (B, S) = ({batch}, {windows}), got {tuple(adapter_prefix.shape)}")
    if adapter_prefix.min() < 0 or adapter_prefix.max() > windows:
        raise ValueError(f"adapter_prefix values must lie in [0, {windows}]")
    return adapter_prefix
