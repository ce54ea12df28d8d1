"""The `pretrain_data` section of a run config, and the window layout of a pretraining example.

Each of the two data stages depends on part of the section (`documents_depends_on`, `examples_depends_on`):
- documents (rule pretrain_documents): source, token_budget, mixture, the chosen source's own block, seed,
  documents_per_shard, bos/eos tokens, and the tokenizer (budgets are counted in base-model tokens);
- examples (rule pretrain_data): window, completion_windows, reconstruction_windows, val_fraction,
  examples_per_shard, bos/eos tokens, seed, and the tokenizer.
Nothing here is a training hyperparameter. The blocks of the sources a config does not use may be left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ga.resources import Resources
from ga.section import ConfigError, ConfigSection, setting

DATA_STAGE_RUNTIME_MINUTES = 24 * 60
"""Default time limit of the pretraining data jobs: streaming a paper-scale token budget takes hours."""

EXAMPLES_FORMAT = 3
"""Version of the stored examples' layout (2: document ids per example, Arrow copies for lazy reading; 3: fictional
entities held out by entity); part of what the examples depend on, so prepared splits of an older layout are rebuilt."""

SOURCE_NAMES = ("embedded", "local", "slimpajama")
"""`pretrain_data.source` values (the registry in ga/data/sources.py)."""


@dataclass(frozen=True)
class WindowLayout:
    """Shape of one pretraining example (docs/method.md#pretraining).

    completion windows 0..n-1 are the sequence's own windows (adapter prefix i); reconstruction windows
    n..n+m-1: window n+j copies a span of the first j+1 windows (adapter prefix j+1).
    """

    window: int
    completion_windows: int
    reconstruction_windows: int

    def __post_init__(self):
        if self.window < 2:
            raise ValueError(f"window: must be >= 2 tokens, got {self.window}")
        if self.completion_windows < 1:
            raise ValueError(f"completion_windows: must be >= 1, got {self.completion_windows}")
        if not 0 <= self.reconstruction_windows <= self.completion_windows:
            raise ValueError(
                f"reconstruction_windows: must be in [0, completion_windows={self.completion_windows}], "
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
"""docs/method.md#pretraining: token shares by `meta.redpajama_set_name`."""

SLIMPAJAMA_REVISION = "2d0accdd58c5d5511943ca1f5ff0e3eb5e293543"
"""Pinned commit of the hub dataset `cerebras/SlimPajama-627B`."""


@dataclass
class EmbeddedSource(ConfigSection):
    """The offline corpus: the standard library's documentation prose plus generated fictional entities."""

    python_docs: bool = setting(True, "include the standard library's documentation prose")
    entities: int = setting(300, "number of generated fictional entities", minimum=0)
    passages_per_entity: int = setting(2, "encyclopedic passages (documents) per entity", minimum=1)


@dataclass
class LocalSource(ConfigSection):
    """Your own corpus on disk."""

    paths: list[str] = setting(
        [],
        "files or folders (searched recursively) of .jsonl / .parquet / .txt documents; "
        "relative to the working directory",
    )


@dataclass
class SlimPajamaSource(ConfigSection):
    """SlimPajama-627B, streamed from the model hub (or a local folder laid out like it)."""

    dataset: str = setting(
        "cerebras/SlimPajama-627B",
        "hub dataset id, or a local folder laid out like the hub repo (train/chunk*/...jsonl.zst)",
    )
    revision: str | None = setting(SLIMPAJAMA_REVISION, "pinned hub revision (ignored for a local folder)")
    split: str = setting("train", "dataset split")


@dataclass
class PretrainDataConfig(ConfigSection):
    """Pretraining data: documents from a source until the token budget is spent, then tokenized, packed into
    sequences of window x completion_windows tokens and laid out as completion + reconstruction windows."""

    section_doc: ClassVar[str] = (
        "pretraining documents from a source until the token budget is spent, tokenized, "
        "packed and laid out as completion + reconstruction windows"
    )

    source: str = setting(
        "embedded",
        "embedded (stdlib docs + fictional entities, offline), local (your "
        ".jsonl/.parquet/.txt files) or slimpajama (cerebras/SlimPajama-627B, streamed)",
        choices=SOURCE_NAMES,
    )
    token_budget: int | None = setting(
        48_000,
        "document tokens to draw (base tokenizer, BOS/EOS included); null: every document of the source",
        minimum=1,
    )
    mixture: dict[str, float] | None = setting(
        None,
        "token share per sub-source (document `source` column); null: "
        "the source's default (SlimPajama: the paper's shares; embedded: "
        "equal shares; local: one shared budget)",
        min_items=1,
        minimum=0,
    )
    embedded: EmbeddedSource = setting(default_factory=EmbeddedSource, doc="source embedded")
    local: LocalSource = setting(default_factory=LocalSource, doc="source local")
    slimpajama: SlimPajamaSource = setting(default_factory=SlimPajamaSource, doc="source slimpajama")
    window: int = setting(1024, "tokens per window (L); must equal adapter.window", minimum=2)
    completion_windows: int = setting(8, "n: a packed sequence is n windows long (seq_len = n x window)", minimum=1)
    reconstruction_windows: int = setting(8, "m <= n reconstruction windows per example", minimum=0)
    val_fraction: float = setting(
        0.1, "share of documents (by hash of seed and doc_id) held out for validation", minimum=0, exclusive_maximum=1
    )
    bos_token: str | None = setting(None, "token put before every document; null: the tokenizer's bos_token")
    eos_token: str | None = setting(None, "token put after every document; null: the tokenizer's eos_token")
    documents_per_shard: int = setting(50_000, "documents per Parquet shard", minimum=1)
    examples_per_shard: int = setting(2_048, "examples per Parquet shard", minimum=1)
    tokenize_batch_documents: int = setting(
        1_024,
        "documents per tokenizer batch (bounds memory; never changes the output)",
        minimum=1,
        affects_output=False,
    )
    resources: Resources = setting(
        default_factory=lambda: Resources(runtime=DATA_STAGE_RUNTIME_MINUTES),
        doc="what the pretrain_documents and pretrain_data jobs request (threads: "
        "cores; a job is started only when that many are free)",
    )
    seed: int = setting(0, "the run config's top-level seed (set by RunConfig)", minimum=0, internal=True)

    def check(self) -> None:
        try:
            _ = self.layout  # building the layout checks it
        except ValueError as err:
            raise ConfigError(str(err)) from None

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

            subs = ([PYTHON_DOCS_SOURCE] if self.embedded.python_docs else []) + (
                [SOURCE_NAME] if self.embedded.entities > 0 else []
            )
            return {name: 1.0 / len(subs) for name in subs} if subs else None
        return None

    def documents_depends_on(self) -> dict[str, Any]:
        """The values the documents stage's output depends on (its manifest and rule params)."""
        return {
            "source": self.source,
            "token_budget": self.token_budget,
            "mixture": self.effective_mixture(),
            self.source: getattr(self, self.source).depends_on(),
            "seed": self.seed,
            "documents_per_shard": self.documents_per_shard,
            # only whether a BOS/EOS is added matters for counting, but the tokens are cheap to compare
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
        }

    def examples_depends_on(self) -> dict[str, Any]:
        """The values the examples stage's output depends on (its manifest and rule params)."""
        return {
            "window": self.window,
            "completion_windows": self.completion_windows,
            "reconstruction_windows": self.reconstruction_windows,
            "seq_len": self.seq_len,
            "val_fraction": self.val_fraction,
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
            "examples_per_shard": self.examples_per_shard,
            "seed": self.seed,
            "format": EXAMPLES_FORMAT,
        }
