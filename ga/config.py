"""Configuration of a Generative Adapter (SPEC §1.1): a JSON-serializable dataclass."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

NORMS = ("svd", "frobenius", "none")
SVD_METHODS = ("exact", "lowrank")


@dataclass
class GenerativeAdapterConfig:
    """Hyperparameters of the generator; the defaults are the paper's Mistral-7B setting.

    inter_size:     d_r, width of the generator's key/value/input projections.
    rank:           r, singular directions kept by the SVD normalization (the LoRA rank).
    alpha:          delta scale numerator; s = alpha / inter_size.
    target_modules: names of adapted linear maps inside each decoder layer (`o_proj`, `mlp.down_proj`, ...).
    window:         tokens per window when encoding a context.
    norm:           `svd` (U_r V_r^T), `frobenius` (S / ||S||_F) or `none` (S as is).
    svd:            `exact` (deterministic full SVD of the d_r x d_r state) or `lowrank` (seeded randomized).
    svd_rtol:       singular values below svd_rtol * sigma_max count as zero (not kept); also the width of the
                    broadening that keeps the SVD backward finite for (near-)equal singular values.
    lowrank_niter:  power iterations of the randomized range finder (`svd: lowrank`).
    lowrank_seed:   seed of the randomized range finder, so adapters are reproducible.
    base_model_id / base_model_revision: recorded by `save_pretrained`, checked when loading.
    """

    inter_size: int = 1024
    rank: int = 128
    alpha: float = 64.0
    target_modules: list[str] = field(default_factory=lambda: ["o_proj"])
    window: int = 1024
    norm: str = "svd"
    svd: str = "exact"
    svd_rtol: float = 1e-6
    lowrank_niter: int = 1
    lowrank_seed: int = 0
    base_model_id: str | None = None
    base_model_revision: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.target_modules, str):
            self.target_modules = [self.target_modules]
        self.target_modules = list(self.target_modules)
        self.validate()

    def validate(self) -> None:
        def fail(key: str, why: str) -> None:
            raise ValueError(f"GenerativeAdapterConfig.{key}: {why}")

        for key in ("inter_size", "rank", "window"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                fail(key, f"must be a positive integer, got {value!r}")
        if self.rank > self.inter_size:
            fail("rank", f"rank {self.rank} exceeds inter_size {self.inter_size}")
        if self.norm not in NORMS:
            fail("norm", f"unknown norm {self.norm!r}; choose one of {NORMS}")
        if self.svd not in SVD_METHODS:
            fail("svd", f"unknown SVD method {self.svd!r}; choose one of {SVD_METHODS}")
        if not self.target_modules or not all(isinstance(m, str) and m for m in self.target_modules):
            fail("target_modules", f"must be a non-empty list of module names, got {self.target_modules!r}")
        if not 0 < self.svd_rtol < 1:
            fail("svd_rtol", f"must lie in (0, 1), got {self.svd_rtol!r}")
        if self.lowrank_niter < 0:
            fail("lowrank_niter", f"must be >= 0, got {self.lowrank_niter!r}")

    @property
    def scale(self) -> float:
        """s = alpha / d_r (SPEC §1.1)."""
        return self.alpha / self.inter_size

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "GenerativeAdapterConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"GenerativeAdapterConfig: unknown key(s) {unknown}; known keys are {sorted(known)}")
        return cls(**values)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "GenerativeAdapterConfig":
        try:
            values = json.loads(Path(path).read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from err
        return cls.from_dict(values)
