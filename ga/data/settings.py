"""The `pretrain_data` config section as dataclasses (defaults documented here; configs override them).

Which values each stage depends on:
- documents stage (`ga pretrain-documents`): source, token_budget, mixture, the source's own section, seed,
  documents_per_shard and the tokenizer (budgets are counted in base-model tokens).
- examples stage (`ga prepare-pretrain-data`): window, completion_windows, reconstruction_windows, val_fraction,
  examples_per_shard, bos_token/eos_token, seed and the tokenizer. (seq_len = window x completion_windows.)
Nothing here is a training hyperparameter.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class WindowLayout:
    """Shape of one pretraining example (SPEC §2.1).

    completion windows 0..n-1 are the sequence's own windows (adapter prefix i); reconstruction windows
    n..n+m-1: window n+j copies a span of the first j+1 windows (adapter prefix j+1).
    """

    window: int
    completion_windows: int
    reconstruction_windows: int

    def __post_init__(self):
        if self.window < 2:
            raise ValueError(f"window must be >= 2 tokens, got {self.window}")
        if self.completion_windows < 1:
            raise ValueError(f"completion_windows must be >= 1, got {self.completion_windows}")
        if not 0 <= self.reconstruction_windows <= self.completion_windows:
            raise ValueError(
                f"reconstruction_windows must be in [0, completion_windows={self.completion_windows}], "
                f"got {self.reconstruction_windows}"
            )

    @property
    def seq_len(self) -> int:
        return self.window * self.completion_windows

    @property
    def num_windows(self) -> int:
        return self.completion_windows + self.reconstruction_windows

    @property
    def adapter_prefix(self) -> list[int]:
        return list(range(self.completion_windows)) + list(range(1, self.reconstruction_windows + 1))


SLIMPAJAMA_MIXTURE = {
    "RedPajamaCommonCrawl": 0.522,
    "RedPajamaC4": 0.267,
    "RedPajamaGithub": 0.052,
    "RedPajamaBook": 0.042,
    "RedPajamaArXiv": 0.046,
    "RedPajamaWikipedia": 0.038,
    "RedPajamaStackExchange": 0.033,
}
"""SPEC §2.1: token shares by `meta.redpajama_set_name`."""

SLIMPAJAMA_REVISION = "2d0accdd58c5d5511943ca1f5ff0e3eb5e293543"
"""Pinned commit of the hub dataset `cerebras/SlimPajama-627B`."""


@dataclass(frozen=True)
class EmbeddedSource:
    python_docs: bool = True
    """Include the standard library's documentation prose."""
    entities: int = 300
    """Number of generated fictional entities."""
    passages_per_entity: int = 2
    """Encyclopedic passages (documents) per entity."""


@dataclass(frozen=True)
class LocalSource:
    paths: tuple[str, ...] = ()
    """Files or folders (searched recursively) of .jsonl / .parquet / .txt documents; relative to the working dir."""


@dataclass(frozen=True)
class SlimPajamaSource:
    dataset: str = "cerebras/SlimPajama-627B"
    """Hub dataset id, or a local folder laid out like the hub repo (train/chunk*/…jsonl.zst)."""
    revision: str | None = SLIMPAJAMA_REVISION
    """Pinned hub revision (ignored for a local folder)."""
    split: str = "train"


@dataclass(frozen=True)
class PretrainDataSettings:
    source: str = "embedded"
    """Which source registry entry supplies documents: embedded | local | slimpajama."""
    token_budget: int | None = 64_000
    """Total document tokens (base tokenizer, with BOS/EOS) to sample; null = every document of the source."""
    mixture: dict[str, float] | None = None
    """Token shares per sub-source (document `source` column); null = the source's default (SlimPajama: SPEC §2.1;
    embedded: equal shares; local: no per-source budget). Documents of sub-sources not listed are skipped."""
    embedded: EmbeddedSource = field(default_factory=EmbeddedSource)
    local: LocalSource = field(default_factory=LocalSource)
    slimpajama: SlimPajamaSource = field(default_factory=SlimPajamaSource)
    window: int = 64
    """Tokens per window (L)."""
    completion_windows: int = 8
    """n: the packed sequence is n windows long (seq_len = n x window)."""
    reconstruction_windows: int = 8
    """m <= n reconstruction windows per example."""
    val_fraction: float = 0.1
    """Share of documents (by hash of seed and doc_id) held out for validation."""
    bos_token: str | None = None
    """Token put before every document; null = the tokenizer's bos_token."""
    eos_token: str | None = None
    """Token put after every document; null = the tokenizer's eos_token."""
    documents_per_shard: int = 50_000
    examples_per_shard: int = 2_048
    tokenize_batch_documents: int = 1_024
    """Documents per tokenizer batch (bounds memory: the stage streams in chunks of this size)."""
    seed: int = 0

    def __post_init__(self):
        if self.source not in ("embedded", "local", "slimpajama"):
            raise ValueError(f"pretrain_data.source must be embedded, local or slimpajama, got {self.source!r}")
        if self.token_budget is not None and self.token_budget < 1:
            raise ValueError(f"pretrain_data.token_budget must be >= 1 or null, got {self.token_budget}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"pretrain_data.val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.mixture is not None and (not self.mixture or any(w < 0 for w in self.mixture.values())):
            raise ValueError(f"pretrain_data.mixture must map sources to weights >= 0, got {self.mixture}")
        for name in ("documents_per_shard", "examples_per_shard", "tokenize_batch_documents"):
            if getattr(self, name) < 1:
                raise ValueError(f"pretrain_data.{name} must be >= 1")
        self.layout  # validates the window layout

    @property
    def layout(self) -> WindowLayout:
        return WindowLayout(self.window, self.completion_windows, self.reconstruction_windows)

    @property
    def seq_len(self) -> int:
        return self.layout.seq_len

    def effective_mixture(self) -> dict[str, float] | None:
        if self.mixture is not None:
            return dict(self.mixture)
        if self.source == "slimpajama":
            return dict(SLIMPAJAMA_MIXTURE)
        if self.source == "embedded":
            from ga.data.embedded import PYTHON_DOCS_SOURCE
            from ga.data.entities import SOURCE_NAME
            subs = ([PYTHON_DOCS_SOURCE] if self.embedded.python_docs else []) + \
                ([SOURCE_NAME] if self.embedded.entities > 0 else [])
            return {name: 1.0 / len(subs) for name in subs} if subs else None
        return None

    def documents_params(self) -> dict[str, Any]:
        """The values the documents stage depends on (for manifests and Snakemake params)."""
        return {"source": self.source, "token_budget": self.token_budget, "mixture": self.effective_mixture(),
                self.source: dataclasses.asdict(getattr(self, self.source)), "seed": self.seed,
                "documents_per_shard": self.documents_per_shard,
                # only whether a BOS/EOS is added matters for counting, but the tokens are cheap to compare
                "bos_token": self.bos_token, "eos_token": self.eos_token}

    def examples_params(self) -> dict[str, Any]:
        return {"window": self.window, "completion_windows": self.completion_windows,
                "reconstruction_windows": self.reconstruction_windows, "seq_len": self.seq_len,
                "val_fraction": self.val_fraction, "bos_token": self.bos_token, "eos_token": self.eos_token,
                "examples_per_shard": self.examples_per_shard, "seed": self.seed}

    @classmethod
    def from_dict(cls, section: dict[str, Any], seed: int | None = None) -> "PretrainDataSettings":
        """Build from the `pretrain_data` config section (unknown keys are an error); `seed` = the config's seed."""
        section = dict(section or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(section) - known
        if unknown:
            raise ValueError(f"pretrain_data: unknown keys {sorted(unknown)}; known: {sorted(known)}")
        nested = {"embedded": EmbeddedSource, "local": LocalSource, "slimpajama": SlimPajamaSource}
        for name, kind in nested.items():
            if name in section:
                sub = dict(section[name] or {})
                sub_known = {f.name for f in dataclasses.fields(kind)}
                if set(sub) - sub_known:
                    raise ValueError(f"pretrain_data.{name}: unknown keys {sorted(set(sub) - sub_known)}")
                if name == "local" and "paths" in sub:
                    sub["paths"] = tuple(sub["paths"] or ())
                section[name] = kind(**sub)
        if seed is not None:
            section["seed"] = seed
        return cls(**section)
