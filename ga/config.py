"""Configuration of a Generative Adapter: the `adapter` section of a run config, saved with every generator."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ga.io import read_json, write_json
from ga.section import ConfigError, ConfigSection, setting

NORMS = ("svd", "frobenius", "none")
SVD_METHODS = ("exact", "lowrank")
CONTEXT_INITS = ("random", "base_kv")
CHUNKINGS = ("fixed", "balanced")


@dataclass
class GenerativeAdapterConfig(ConfigSection):
    """The generator's hyperparameters (docs/method.md#generator); defaults are the paper's Mistral-7B setting."""

    inter_size: int = setting(1024, "d_r, width of the generator's key/value/input projections", minimum=1)
    rank: int = setting(
        128, "r, singular directions kept by the SVD normalization (the LoRA rank); at most inter_size", minimum=1
    )
    alpha: float = setting(64.0, "delta scale numerator; scale = alpha / inter_size", exclusive_minimum=0)
    target_modules: list[str] = setting(
        ["o_proj"],
        "names of the adapted linear maps inside each decoder layer (o_proj, mlp.down_proj, ...)",
        min_items=1,
    )
    window: int = setting(1024, "tokens per window when encoding a context", minimum=1)
    chunking: str = setting(
        "fixed",
        "how encode cuts a context of T tokens: fixed (windows of `window` tokens, the "
        "last one shorter) or balanced (the authors' chunks of "
        "ceil(T / ceil(T / window)) tokens, the last one the remainder)",
        choices=CHUNKINGS,
    )
    norm_eps: float = setting(
        1e-6,
        "epsilon of the RMSNorm applied to the context's hidden states (1e-6 as in the authors' code)",
        exclusive_minimum=0,
    )
    context_init: str = setting(
        "random",
        "how A2, A3 and the RMSNorm gain start: random (the paper's Kaiming init, "
        "gain one) or base_kv (rows 0 .. d_r-1 of the same layer's k_proj and "
        "v_proj, gain = the layer's input RMSNorm: keys and values start as the base "
        "model's attention keys and values of the context)",
        choices=CONTEXT_INITS,
    )
    norm: str = setting(
        "svd",
        "normalization of the context state: svd (U_r V_r^T), frobenius (S / ||S||_F) or none (S as is)",
        choices=NORMS,
    )
    svd: str = setting(
        "exact",
        "exact (deterministic full SVD of the d_r x d_r state) or lowrank (seeded randomized)",
        choices=SVD_METHODS,
    )
    svd_rtol: float = setting(
        1e-6,
        "singular values below svd_rtol * sigma_max count as zero; also the width of the "
        "broadening that keeps the SVD backward finite",
        exclusive_minimum=0,
        exclusive_maximum=1,
    )
    lowrank_niter: int = setting(1, "power iterations of the randomized range finder (svd: lowrank)", minimum=0)
    lowrank_seed: int = setting(0, "seed of the randomized range finder, so adapters are reproducible", minimum=0)
    base_model_id: str | None = setting(None, "recorded by save_pretrained, checked when loading", internal=True)
    base_model_revision: str | None = setting(None, "recorded by save_pretrained", internal=True)

    def __post_init__(self) -> None:
        if isinstance(self.target_modules, str):
            self.target_modules = [self.target_modules]
        self.target_modules = list(self.target_modules)
        super().__post_init__()

    def check(self) -> None:
        if self.rank > self.inter_size:
            raise ConfigError(f"rank: rank {self.rank} exceeds inter_size {self.inter_size}")

    @property
    def scale(self) -> float:
        """s = alpha / d_r."""
        return self.alpha / self.inter_size

    def save(self, path: str | Path) -> None:
        write_json(self.to_dict(), path, sort_keys=False)

    @classmethod
    def load(cls, path: str | Path) -> GenerativeAdapterConfig:
        try:
            return cls.from_dict(read_json(path))
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None
