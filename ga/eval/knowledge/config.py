"""The `knowledge_eval` section: knowledge acquisition by context length (docs/method.md#evaluation).

Which benchmarks, context lengths and methods form the grid (each cell one Snakemake job, so adding a length, a
method or a benchmark runs only the new jobs), how answers are generated, each baseline's own settings, the
benchmark sources, and the cluster resources of each method's jobs.

Benchmarks: `squad` (SQuAD v1.1 validation from the hub), `streamingqa` (CaMeLS's StreamingQA test CSV, a file the
user supplies), `entities` (the embedded twin: the held-out fictional entities of `sft_sources.entity_qa`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ga.eval.config import (
    ENCODE_STRATEGIES,
    LoraTrainingConfig,
    batch_size_setting,
    max_batch_tokens_setting,
    max_new_tokens_setting,
)
from ga.eval.family import check_names
from ga.eval.knowledge.methods import REGISTRY
from ga.section import ConfigError, ConfigSection, setting

MethodResources = REGISTRY.resources_section()

BENCHMARKS = ("squad", "streamingqa", "entities")
METHODS = REGISTRY.names
PAPER_LENGTHS = [512, 1024, 2048, 4096, 8192, 16384, 32768]


@dataclass
class SquadSourceConfig(ConfigSection):
    """SQuAD v1.1 (`datasets.load_dataset`, Parquet on the hub): the evaluation split's passages and questions, and
    the training split's question-answer pairs for the QA fine-tuning baseline."""

    hub_id: str = setting("rajpurkar/squad", "hub dataset repository (owner/name)", pattern=r"[^/\s]+/[^/\s]+")
    config_name: str = setting("plain_text", "dataset config (subset) name")
    revision: str | None = setting(
        None, "pinned hub commit (40 hex digits); null: the default branch at download time", pattern=r"[0-9a-f]{40}"
    )
    split: str = setting("validation", "split whose passages become contexts and whose questions are asked")
    train_split: str = setting(
        "train", "split whose question-answer pairs (without passages) train the QA fine-tuning baseline"
    )


@dataclass
class StreamingQaSourceConfig(ConfigSection):
    """StreamingQA as CaMeLS prepared it: a CSV with columns `question`, `answers` (joined by backslashes) and `text`
    (the evidence article), one row per question. No public copy can be downloaded: the user supplies the files."""

    test_csv: str | None = setting(
        None, "path of CaMeLS's StreamingQA test CSV (required when `streamingqa` is in knowledge_eval.benchmarks)"
    )
    train_csv: str | None = setting(
        None,
        "path of a CSV in the same layout whose question-answer pairs train the "
        "QA fine-tuning baseline (required when that method runs on streamingqa)",
    )


@dataclass
class Bm25Config(ConfigSection):
    """BM25 retrieval of the context's best chunk for each question (Okapi BM25), prepended to the question."""

    chunk_tokens: int = setting(100, "tokens per chunk of the context (base-model tokens)", minimum=1)
    top_k: int = setting(1, "chunks prepended to the question, best first", minimum=1)
    k1: float = setting(1.5, "BM25 term-frequency saturation", minimum=0)
    b: float = setting(0.75, "BM25 length normalization", minimum=0, maximum=1)


@dataclass
class KnowledgeEvalConfig(ConfigSection):
    """Knowledge acquisition by context length: a benchmark's passages grouped into contexts of k tokens; every
    question about a context is answered without the context in the prompt (generative adapter) or by a baseline."""

    section_doc: ClassVar[str] = (
        "knowledge acquisition by context length: benchmarks x lengths x methods, each cell one job"
    )

    benchmarks: list[str] = setting(["entities"], f"benchmarks to evaluate, among {list(BENCHMARKS)}", min_items=1)
    lengths: list[int] = setting(
        list(PAPER_LENGTHS),
        "context lengths k in base-model tokens: unique passages are "
        "concatenated in order into contexts of about k tokens",
        min_items=1,
        minimum=1,
    )
    methods: list[str] = setting(list(METHODS), f"methods to evaluate, among {list(METHODS)}", min_items=1)
    sample_contexts: int | None = setting(
        None,
        "evaluate only the first n contexts of each length (null: all of them); recorded in every result",
        minimum=1,
    )
    max_new_tokens: int = max_new_tokens_setting(20)
    batch_size: int = batch_size_setting("questions")
    max_batch_tokens: int | None = max_batch_tokens_setting("long in-context prompts go in smaller batches; ")
    encode_strategy: str = setting(
        "sequential",
        "how the generative adapter encodes a context: sequential "
        "(windows in one forward pass) or streaming (window by window)",
        choices=ENCODE_STRATEGIES,
    )
    max_prompt_tokens: int | None = setting(
        None,
        "in-context prompting keeps the last this many tokens of the "
        "context so the prompt fits (null: the base model's context limit)",
        minimum=1,
    )
    prompt_cache: bool = setting(
        True,
        "in-context prompting runs the context once into a KV cache that all of its "
        "questions continue from (what a serving system does, and the paper's "
        "per-query cost of prompting); false: every question's prompt re-reads the "
        "whole context",
    )
    bm25: Bm25Config = setting(default_factory=Bm25Config, doc="BM25 retrieval baseline")
    continual_pretraining: LoraTrainingConfig = setting(
        default_factory=LoraTrainingConfig,
        doc="continual pretraining baseline: a LoRA trained on the context's text with the LM loss",
    )
    qa_finetuning: LoraTrainingConfig = setting(
        default_factory=LoraTrainingConfig,
        doc="QA fine-tuning baseline: a LoRA trained on the benchmark's training questions (no passages)",
    )
    squad: SquadSourceConfig = setting(default_factory=SquadSourceConfig, doc="SQuAD v1.1 source")
    streamingqa: StreamingQaSourceConfig = setting(
        default_factory=StreamingQaSourceConfig, doc="StreamingQA source (user-supplied CSVs)"
    )
    resources: MethodResources = setting(default_factory=MethodResources, doc="cluster resources per method")

    def check(self) -> None:
        check_names("benchmarks", self.benchmarks, BENCHMARKS)
        check_names("methods", self.methods, METHODS)
        if len(set(self.lengths)) != len(self.lengths):
            raise ConfigError(f"lengths: must be distinct, got {self.lengths!r}")
        if "streamingqa" in self.benchmarks and self.streamingqa.test_csv is None:
            raise ConfigError(
                "streamingqa.test_csv: required when streamingqa is in benchmarks (StreamingQA cannot "
                "be downloaded; give the path of CaMeLS's test CSV)"
            )
        if "streamingqa" in self.benchmarks and "qa_finetuning" in self.methods and self.streamingqa.train_csv is None:
            raise ConfigError(
                "streamingqa.train_csv: required when qa_finetuning runs on streamingqa (its training "
                "question-answer pairs)"
            )
