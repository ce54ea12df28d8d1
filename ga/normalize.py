"""Normalization of context states (docs/method.md#generator): S -> N, batched over leading dimensions.

`svd` keeps the top-r singular directions with unit singular values, N = U_r V_r^T. A plain autograd SVD
is useless for training here: its backward divides by sigma_i^2 - sigma_j^2, which is infinite for the
all-zero states of windows without an adapter and for the repeated zero singular values of any state that
sums fewer tokens than d_r, and huge for near-equal values. `_SVDNormalize` therefore computes the SVD
without autograd and supplies the analytic backward of N = U diag(p) V^T, which only needs

  * 1 / (sigma_i + sigma_j) between two kept directions (finite: kept values are > rtol * sigma_max), and
  * 1 / (sigma_a^2 - sigma_b^2) between a kept and a dropped direction, evaluated as the broadened
    D / (D^2 + eps^2) with eps = rtol * sigma_max^2, so a (near-)tie at the truncation boundary yields a
    bounded gradient instead of inf/NaN (the subspace is ill-defined there anyway).

Singular values below rtol * sigma_max are treated as zero and dropped, so an all-zero state normalizes
to the zero matrix (no adapter) and a low-rank state keeps only its meaningful directions.
"""

from __future__ import annotations

import torch

from ga.config import GenerativeAdapterConfig


def _kept_mask(sigma: torch.Tensor, rank: int, rtol: float) -> torch.Tensor:
    """1.0 for the top-`rank` singular values that are above rtol * sigma_max, else 0.0 (sigma sorted desc)."""
    top = torch.zeros_like(sigma)
    top[..., :rank] = 1.0
    significant = sigma > rtol * sigma[..., :1]
    return top * significant


class _SVDNormalize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, state: torch.Tensor, rank: int, rtol: float) -> torch.Tensor:
        u, sigma, vh = torch.linalg.svd(state, full_matrices=True)
        kept = _kept_mask(sigma, rank, rtol)
        normalized = (u * kept.unsqueeze(-2)) @ vh
        ctx.save_for_backward(u, sigma, vh, kept)
        ctx.rtol = rtol
        return normalized

    @staticmethod
    def backward(ctx, grad_normalized: torch.Tensor):
        u, sigma, vh, kept = ctx.saved_tensors
        v = vh.transpose(-1, -2)
        g = u.transpose(-1, -2) @ grad_normalized @ v  # gradient in the singular bases
        gt = g.transpose(-1, -2)
        s_i, s_j = sigma.unsqueeze(-1), sigma.unsqueeze(-2)
        p_i, p_j = kept.unsqueeze(-1), kept.unsqueeze(-2)

        # kept-kept pairs: d(U V^T) is the polar-factor derivative, (G - G^T) / (s_i + s_j).
        both_kept = p_i * p_j
        sum_safe = torch.where(both_kept > 0, s_i + s_j, torch.ones_like(s_i))
        x = both_kept * (g - gt) / sum_safe

        # kept (row) - dropped (column) pairs and their transposes, with a broadened 1 / (s_a^2 - s_b^2).
        eps = ctx.rtol * sigma[..., :1].unsqueeze(-1) ** 2
        gap = s_i**2 - s_j**2  # gap[i, j] = s_i^2 - s_j^2
        inv_gap = gap / (gap**2 + eps**2 + torch.finfo(sigma.dtype).tiny)
        kept_row = p_i * (1 - p_j)  # i kept, j dropped
        kept_col = (1 - p_i) * p_j  # i dropped, j kept
        x = x + kept_row * (s_i * g + s_j * gt) * inv_gap
        x = x + kept_col * (s_i * gt + s_j * g) * (-inv_gap)
        return u @ x @ vh, None, None


def svd_normalize(state: torch.Tensor, rank: int, rtol: float) -> torch.Tensor:
    """N = U_r V_r^T of each d x d matrix in `state` (float32), with a finite backward (see module doc)."""
    return _SVDNormalize.apply(state, rank, rtol)


def _lowrank_subspaces(state: torch.Tensor, rank: int, niter: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthonormal bases of the dominant column and row spaces (seeded randomized range finder, no autograd)."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    probe = torch.randn(state.shape[-1], rank, generator=generator, dtype=state.dtype).to(state.device)
    with torch.no_grad():
        left = torch.linalg.qr(state @ probe).Q
        for _ in range(niter):
            left = torch.linalg.qr(state @ (state.transpose(-1, -2) @ left)).Q
        right = torch.linalg.qr(state.transpose(-1, -2) @ left).Q
    return left, right


def lowrank_svd_normalize(state: torch.Tensor, rank: int, rtol: float, niter: int, seed: int) -> torch.Tensor:
    """Seeded randomized variant: find a rank-r left/right subspace (Q, W) with `niter` power iterations,
    then normalize the small core Q^T S W exactly. The subspaces are treated as constants in the backward
    (Rayleigh-Ritz); the core's gradient uses the same finite backward as `svd_normalize`."""
    left, right = _lowrank_subspaces(state, rank, niter, seed)
    core = left.transpose(-1, -2) @ state @ right
    return left @ svd_normalize(core, rank, rtol) @ right.transpose(-1, -2)


def frobenius_normalize(state: torch.Tensor) -> torch.Tensor:
    norm = torch.linalg.matrix_norm(state, ord="fro", keepdim=True)
    return torch.where(norm > 0, state / norm.clamp_min(torch.finfo(state.dtype).tiny), torch.zeros_like(state))


def normalize_state(state: torch.Tensor, config: GenerativeAdapterConfig) -> torch.Tensor:
    """Normalize float32 states (..., d_r, d_r) as the config says; an all-zero state maps to zero."""
    if config.norm == "none":
        return state
    if config.norm == "frobenius":
        return frobenius_normalize(state)
    if config.svd == "lowrank":
        return lowrank_svd_normalize(state, config.rank, config.svd_rtol, config.lowrank_niter, config.lowrank_seed)
    return svd_normalize(state, config.rank, config.svd_rtol)


def normalized_factors(state: torch.Tensor, config: GenerativeAdapterConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(U_r, V_r) with N = U_r V_r^T for one d_r x d_r state under `norm: svd`, without autograd.
    Columns of dropped directions (zero singular values) are zero, so rank(N) <= r."""
    state = state.float()
    with torch.no_grad():
        if config.svd == "lowrank":
            left, right = _lowrank_subspaces(state, config.rank, config.lowrank_niter, config.lowrank_seed)
            u, sigma, vh = torch.linalg.svd(left.transpose(-1, -2) @ state @ right)
            u, vh = left @ u, vh @ right.transpose(-1, -2)
        else:
            u, sigma, vh = torch.linalg.svd(state)
        kept = _kept_mask(sigma, config.rank, config.svd_rtol)[: config.rank]
        return u[:, : config.rank] * kept, vh[: config.rank].transpose(0, 1) * kept


def lora_factors(
    state: torch.Tensor, a1: torch.Tensor, b: torch.Tensor, config: GenerativeAdapterConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """LoRA factors of W_delta / s = B N^T A1 for one module (docs/method.md#generator), in float32.

    svd: lora_A = U_r^T A1 (r x d_in), lora_B = B V_r (d_out x r); dropped directions give zero rows/columns.
    frobenius / none: N is full rank, so lora_A = N^T A1 (d_r x d_in), lora_B = B.
    """
    state = state.to(a1.device)
    if config.norm == "svd":
        u_r, v_r = normalized_factors(state, config)
        return u_r.transpose(0, 1) @ a1.float(), b.float() @ v_r
    with torch.no_grad():
        normalized = normalize_state(state.float(), config)
    return normalized.transpose(0, 1) @ a1.float(), b.float().clone()
