"""The `sft_sources` section: where each instruction-tuning dataset comes from and how it becomes records
(docs/method.md#sft-mixture; sources, fields and licences in docs/data-sources.md#instruction-tuning-datasets).

Every number of the conversion rules is a setting here, with the value the method uses as its default. Limits are
counted in tokens of the base model's tokenizer (the authors counted whitespace words):
- `max_context_tokens` (default 4,096): a record whose context is longer is dropped;
- `max_conversation_tokens` (default 512): the QA budget of one record, the sum of its questions' and answers'
  tokens (the chat template's own tokens are not counted); QA pairs are cut from the end of the session until it
  fits, and a record whose first pair alone does not fit is dropped.
A dataset's block may override either limit (NarrativeQA: 2,048 context tokens; BookSum: 4,096).

Revisions are pinned to a hub commit where one was looked up; `null` means the default branch at download time
(CoQA, DROP, PubMedQA and QuAIL: their commit after the conversion to Parquet was not looked up here; pin it in
your config for a reproducible download).

`source(name)` gives a dataset's block with the global limits filled in: what its converter takes.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass
from typing import ClassVar

from ga.data.sft.metaicl_split import HR_TO_LR_TRAIN_TASKS, is_test_task
from ga.section import ConfigError, ConfigSection, setting

HUB_ID_PATTERN = r"[^/\s]+/[^/\s]+"
COMMIT_PATTERN = r"[0-9a-f]{40}"
PASSAGE_SEPARATOR = "\n\n"
"""Between the passages of one context and between MetaICL demonstrations (the authors' joiner)."""


def _hub_id(default: str):
    return setting(default, "hub dataset repository (owner/name)", pattern=HUB_ID_PATTERN)


def _revision(default: str | None):
    return setting(
        default, "pinned hub commit (40 hex digits); null: the default branch at download time", pattern=COMMIT_PATTERN
    )


def _context_override(default: int | None = None):
    return setting(
        default, "this dataset's context limit in base-model tokens; null: sft_sources.max_context_tokens", minimum=1
    )


def _distractors(default: int):
    return setting(
        default,
        "a record's context gets a uniform 0..n random other passages of the dataset as "
        "distractors (never its own), shuffled together with its own",
        minimum=0,
    )


@dataclass
class SftSourceConfig(ConfigSection):
    """One instruction-tuning dataset: where it comes from, how many records to keep, its own token limits."""

    hub_id: str = _hub_id("owner/name")
    revision: str | None = _revision(None)
    max_records: int | None = setting(
        None, "keep at most this many records (the first ones converted); null: all", minimum=1
    )
    max_context_tokens: int | None = _context_override()
    max_conversation_tokens: int | None = setting(
        None,
        "this dataset's QA budget per record in base-model tokens; null: sft_sources.max_conversation_tokens",
        minimum=1,
    )


@dataclass
class HubSplitSourceConfig(SftSourceConfig):
    """A dataset loaded with `datasets.load_dataset` (Parquet on the hub) and saved as one Parquet file."""

    config_name: str | None = setting(None, "dataset config (subset) name; null: the default one")
    split: str = setting("train", "dataset split")


@dataclass
class HubFileSourceConfig(SftSourceConfig):
    """A dataset read from one file of its hub repository."""

    file: str = setting("train", "file in the hub repository")


@dataclass
class CoqaConfig(HubSplitSourceConfig):
    """CoQA: one story per record with its whole conversation, plus random distractor stories."""

    hub_id: str = _hub_id("stanfordnlp/coqa")
    distractors: int = _distractors(8)
    passage_separator: str = setting(PASSAGE_SEPARATOR, "between the passages of a context")


@dataclass
class DropConfig(HubSplitSourceConfig):
    """DROP: the questions of one passage per record, plus random distractor passages."""

    hub_id: str = _hub_id("ucinlp/drop")
    distractors: int = _distractors(8)
    passage_separator: str = setting(PASSAGE_SEPARATOR, "between the passages of a context")


@dataclass
class NarrativeqaConfig(HubSplitSourceConfig):
    """NarrativeQA: the questions of one story summary per record."""

    hub_id: str = _hub_id("deepmind/narrativeqa")
    revision: str | None = _revision("2e643e7363944af1c33a652d1c87320d0871c4e4")
    max_context_tokens: int | None = _context_override(2048)


@dataclass
class PubmedqaConfig(HubSplitSourceConfig):
    """PubMedQA (expert-labelled): one question per record."""

    hub_id: str = _hub_id("qiaojin/PubMedQA")
    config_name: str | None = setting("pqa_labeled", "dataset config (subset) name")
    contexts_separator: str = setting("\n", "between the abstract sections (`context.contexts`) of a context")


@dataclass
class QuailConfig(HubSplitSourceConfig):
    """QuAIL: the questions of one passage per record, unanswerable ones left out."""

    hub_id: str = _hub_id("textmachinelab/quail")
    unanswerable_answer: str = setting(
        "not enough information", "a question whose correct answer is this text (case-insensitive) is dropped"
    )


@dataclass
class MsmarcoConfig(HubSplitSourceConfig):
    """MS MARCO v1.1: the selected passages of several query groups per record, plus random distractor passages."""

    hub_id: str = _hub_id("microsoft/ms_marco")
    revision: str | None = _revision("a47ee7aae8d7d466ba15f9f0bfac3b3681087b3a")
    config_name: str | None = setting("v1.1", "dataset config (subset) name")
    passages_per_record: int = setting(
        4, "selected passages (each with all its queries) merged into one record", minimum=1
    )
    distractors: int = _distractors(32)
    passage_separator: str = setting(PASSAGE_SEPARATOR, "between the passages of a context")
    no_answer_texts: list[str] = setting(
        ["No Answer Present."], "an `answers[0]` equal to one of these counts as no answer"
    )


@dataclass
class BooksumConfig(HubFileSourceConfig):
    """BookSum (chapter level): one chapter per record, summarised."""

    hub_id: str = _hub_id("kmfoda/booksum")
    revision: str | None = _revision("0a6504641ba34fc8803cd9070b8f51aa8e5c9957")
    file: str = setting("train.csv", "CSV file of the train split in the hub repository")
    max_context_tokens: int | None = _context_override(4096)
    context_template: str = setting(
        "{book}, {summary_id}:\n\n{chapter}", "a record's context; {book} is `book_id` up to its first '.'"
    )
    question_template: str = setting("Summarize {book}, {summary_id}", "a record's one question")


@dataclass
class LongalpacaConfig(HubFileSourceConfig):
    """LongAlpaca-12k: the document part of `instruction` is the context, the rest the question."""

    hub_id: str = _hub_id("Yukang/LongAlpaca-12k")
    revision: str | None = _revision("46dce924ed8786979556018e191c0f557d8f4aa2")
    file: str = setting("LongAlpaca-12k.json", "the JSON array in the hub repository")
    marker_pattern: str = setting(
        r"Now the (.*?) ends\.",
        "regular expression of the end-of-document marker; the context runs up to and including its last match",
    )

    def check(self) -> None:
        try:
            re.compile(self.marker_pattern)
        except re.error as err:
            raise ConfigError(f"marker_pattern: {self.marker_pattern!r} is not a regular expression ({err})") from None


@dataclass
class PwcConfig(HubFileSourceConfig):
    """PwC (an alternative to LongAlpaca): the prompts on one text per record."""

    hub_id: str = _hub_id("sggetao/PwC")
    revision: str | None = _revision("d41505547145b4e8c5c2907e3a686222afb32f43")
    file: str = setting("PwC_train.jsonl", "JSONL file of the train split in the hub repository")
    max_context_tokens: int | None = _context_override(2048)
    max_turn_tokens: int = setting(
        128, "a prompt or answer longer than this (base-model tokens) is dropped with its pair", minimum=1
    )


@dataclass
class MetaiclConfig(HubFileSourceConfig):
    """MetaICL HR->LR training tasks: demonstrations as the context, held-out examples as the questions."""

    hub_id: str = _hub_id("allenai/metaicl-data")
    revision: str | None = _revision("9e999b5f6c4083a8c2309df57f06316a72de78ec")
    file: str = setting(
        "data/{task}/{task}_16384_100_train.jsonl", "per-task file in the hub repository; {task} is the task name"
    )
    tasks: list[str] = setting(
        list(HR_TO_LR_TRAIN_TASKS), "training tasks (MetaICL HR->LR train); an HR->LR test task is refused", min_items=1
    )
    max_demonstrations: int = setting(
        64, "demonstrations per record, at most (fewer when the context limit is reached first)", minimum=1
    )
    max_queries: int = setting(
        4, "held-out examples asked per record, at most (fewer when the QA budget is reached first)", minimum=1
    )
    max_groups: int = setting(200, "records per task, at most", minimum=1)
    demonstration_template: str = setting("Input: {input}\nOutput: {output}", "one demonstration in the context")
    question_template: str = setting(
        "Input: {input}\nOutput:", "one held-out example's question; its answer is the example's `output`"
    )
    demonstration_separator: str = setting(PASSAGE_SEPARATOR, "between demonstrations")

    def check(self) -> None:
        if "{task}" not in self.file:
            raise ConfigError(f"file: {self.file!r} must contain {{task}}")
        for task in self.tasks:
            if is_test_task(task):
                raise ConfigError(
                    f"tasks: {task!r} is a MetaICL HR->LR test task: it is evaluated on and must "
                    "never be used for training"
                )
        duplicates = sorted({task for task in self.tasks if self.tasks.count(task) > 1})
        if duplicates:
            raise ConfigError(f"tasks: listed more than once: {duplicates}")


@dataclass
class SftSourcesConfig(ConfigSection):
    """Instruction-tuning sources: the global token limits and one block per dataset."""

    section_doc: ClassVar[str] = (
        "instruction-tuning datasets: where each comes from, its conversion settings, and the token limits of a record"
    )

    max_context_tokens: int = setting(
        4096, "a record's context, at most (base-model tokens); longer records are dropped", minimum=1
    )
    max_conversation_tokens: int = setting(
        512,
        "QA budget of a record (base-model tokens of its questions and answers); pairs beyond it are cut from the end",
        minimum=1,
    )
    coqa: CoqaConfig = setting(default_factory=CoqaConfig, doc="CoQA (stanfordnlp/coqa)")
    drop: DropConfig = setting(default_factory=DropConfig, doc="DROP (ucinlp/drop)")
    narrativeqa: NarrativeqaConfig = setting(
        default_factory=NarrativeqaConfig, doc="NarrativeQA (deepmind/narrativeqa)"
    )
    pubmedqa: PubmedqaConfig = setting(default_factory=PubmedqaConfig, doc="PubMedQA pqa_labeled (qiaojin/PubMedQA)")
    quail: QuailConfig = setting(default_factory=QuailConfig, doc="QuAIL (textmachinelab/quail)")
    msmarco: MsmarcoConfig = setting(default_factory=MsmarcoConfig, doc="MS MARCO v1.1 (microsoft/ms_marco)")
    booksum: BooksumConfig = setting(default_factory=BooksumConfig, doc="BookSum (kmfoda/booksum)")
    longalpaca: LongalpacaConfig = setting(
        default_factory=LongalpacaConfig, doc="LongAlpaca-12k (Yukang/LongAlpaca-12k)"
    )
    pwc: PwcConfig = setting(default_factory=PwcConfig, doc="PwC (sggetao/PwC), an alternative to LongAlpaca")
    metaicl: MetaiclConfig = setting(
        default_factory=MetaiclConfig, doc="MetaICL HR->LR training tasks (allenai/metaicl-data)"
    )
    seed: int = setting(0, "the run config's top-level seed (set by RunConfig)", minimum=0, internal=True)

    @classmethod
    def source_names(cls) -> tuple[str, ...]:
        hints = typing.get_type_hints(cls)
        return tuple(
            f.name
            for f in dataclasses.fields(cls)
            if isinstance(hints[f.name], type) and issubclass(hints[f.name], SftSourceConfig)
        )

    def source(self, name: str) -> SftSourceConfig:
        """Dataset `name`'s block with the global limits filled in where it does not override them."""
        if name not in self.source_names():
            raise KeyError(f"unknown SFT source {name!r}; known: {', '.join(self.source_names())}")
        block = getattr(self, name)
        return dataclasses.replace(
            block,
            max_context_tokens=block.max_context_tokens or self.max_context_tokens,
            max_conversation_tokens=block.max_conversation_tokens or self.max_conversation_tokens,
        )

    def source_depends_on(self, name: str) -> dict:
        """What dataset `name`'s converted records depend on (rule params of its conversion)."""
        return {"dataset": name, "settings": self.source(name).depends_on(), "seed": self.seed}
