"""The two instruction-tuning sections of a run config, apart from the code that does the work (ga/data/sft/mixture.py),
so that reading a config imports no table library.

- `SftSourcesSectionConfig`: the `sft_sources` section: the real datasets' blocks (ga/data/sft/config.py) and the
  embedded twin's (ga/data/sft/embedded/config.py).
- `SftDataConfig`: the `sft_data` section: the mixture's datasets, held-out slices, caps, weights, shuffle and token
  layout; `check_datasets`: every dataset of the mixture has its block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ga.data.sft.config import SftSourcesConfig
from ga.data.sft.embedded.config import EmbeddedSourceConfig, EntityQaConfig, SyntheticChatConfig, SyntheticIclConfig
from ga.resources import Resources
from ga.section import ConfigError, ConfigSection, setting

MIXTURE_RUNTIME_MINUTES = 12 * 60
MIXTURE_MEMORY_MB = 16_000

EMBEDDED_DATASETS = ("entity_qa", "synthetic_icl", "synthetic_chat")
"""The embedded twin's generated datasets (ga/data/sft/embedded/): the embedded default's mixture."""


@dataclass
class SftSourcesSectionConfig(SftSourcesConfig):
    """The `sft_sources` section: the real datasets' blocks (SftSourcesConfig) and the embedded twin's."""

    entity_qa: EntityQaConfig = setting(
        default_factory=EntityQaConfig, doc="embedded twin: knowledge QA on the fictional entities (generated)"
    )
    synthetic_icl: SyntheticIclConfig = setting(
        default_factory=SyntheticIclConfig, doc="embedded twin: synthetic in-context-learning tasks (generated)"
    )
    synthetic_chat: SyntheticChatConfig = setting(
        default_factory=SyntheticChatConfig, doc="embedded twin: synthetic multi-session chats (generated)"
    )

    def set_run_values(self, seed: int, pretrain_val_fraction: float) -> None:
        """What the run sets: its seed everywhere, and the generated datasets' split of the fictional entities,
        which must be the pretraining data's hold-out (ga/data/sft/embedded/config.py)."""
        self.seed = seed
        for name in self.source_names():
            block = getattr(self, name)
            if isinstance(block, EmbeddedSourceConfig):
                block.seed = seed
                if hasattr(block, "val_fraction"):
                    block.val_fraction = pretrain_val_fraction


@dataclass
class SftDataConfig(ConfigSection):
    """The instruction-tuning mixture: which datasets, held-out slices, caps, weights, shuffle, and the token
    layout (windows of adapter.window tokens)."""

    section_doc: ClassVar[str] = (
        "instruction-tuning mixture: datasets, a held-out validation slice of each, caps, "
        "weights and a seeded shuffle; records become context + conversation windows"
    )

    datasets: list[str] = setting(
        list(EMBEDDED_DATASETS),
        "datasets of the mixture, each with its block in sft_sources (paper: coqa, drop, "
        "narrativeqa, pubmedqa, quail, msmarco, booksum, longalpaca, metaicl)",
        min_items=1,
    )
    val_records: int = setting(
        8,
        "records of each dataset held out for validation (chosen by a seeded hash of the record id; never in training)",
        minimum=0,
    )
    max_records: dict[str, int] = setting(
        {}, "training records of a dataset, at most (a seeded choice); a dataset not listed keeps all", minimum=1
    )
    weights: dict[str, float] = setting(
        {},
        "how often a dataset's training records appear: 1 once, 2 twice, 0.5 a seeded half; a dataset not listed: 1",
        exclusive_minimum=0,
    )
    shuffle: bool = setting(
        True,
        "shuffle the training mixture (seeded); false keeps dataset after dataset, as the authors concatenated them",
    )
    max_tokens: int = setting(
        8192,
        "tokens of one record, at most (windows x adapter.window): conversation windows "
        "beyond it are cut with their QA pairs; a record whose context leaves no room "
        "for one conversation window is dropped",
        minimum=2,
    )
    examples_per_shard: int = setting(1024, "examples per Parquet shard", minimum=1)
    tokenize_batch_records: int = setting(
        256, "records per tokenizer batch (bounds memory; never changes the output)", minimum=1, affects_output=False
    )
    resources: Resources = setting(
        default_factory=lambda: Resources(mem_mb=MIXTURE_MEMORY_MB, runtime=MIXTURE_RUNTIME_MINUTES),
        doc="what the sft_data job requests (threads: cores; a job is started only when that many are free)",
    )
    seed: int = setting(0, "the run config's top-level seed (set by RunConfig)", minimum=0, internal=True)

    def check(self) -> None:
        repeated = sorted({name for name in self.datasets if self.datasets.count(name) > 1})
        if repeated:
            raise ConfigError(f"datasets: listed more than once: {repeated}")
        for key in ("max_records", "weights"):
            unknown = sorted(set(getattr(self, key)) - set(self.datasets))
            if unknown:
                raise ConfigError(f"{key}: {unknown} not in datasets {self.datasets}")

    def weight(self, dataset: str) -> float:
        return self.weights.get(dataset, 1.0)

    def mixture_depends_on(self, window: int) -> dict[str, Any]:
        """What the sft_data stage's output depends on (its rule params and manifest)."""
        return {**self.depends_on(), "window": window, "seed": self.seed}


def check_datasets(datasets: list[str], source_names: tuple[str, ...]) -> None:
    """Every dataset of the mixture is one of `source_names` (the `sft_sources` blocks, one per converter of
    `ga.data.sft.mixture.sft_sources_registry`: tests/test_sft_data.py checks that they are the same names, so the
    check needs no converter module); raises ConfigError naming the key."""
    for name in datasets:
        if name not in source_names:
            raise ConfigError(
                f"sft_data.datasets: {name!r} is not an instruction-tuning dataset (known: "
                f"{', '.join(sorted(source_names))})"
            )
