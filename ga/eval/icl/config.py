"""The `icl_eval` section: in-context learning (docs/method.md#in-context-learning).

The grid: benchmark x task x k x seed x method, each cell one job (so a new k, seed, task or method runs only its
jobs). `zero_shot` sees no demonstrations, so it runs once per task (k = 0, the first seed). What each job depends on:

  icl_episodes  (benchmark x task x seed)       the benchmark's source block (hub id, revision, file pattern,
                                                train_examples; the synthetic twin: its block and the run's
                                                `sft_sources.synthetic_icl`), the task, the seed
  icl_eval      (benchmark x task x k x seed x   the episodes file; k; the method; max_test_examples,
                 method)                          max_new_tokens, batch_size, max_batch_tokens, the demonstration
                                                 format (the benchmark's SFT block); the method's own settings
                                                 (generative_adapter: encode_strategy and the generator;
                                                 few_shot: max_prompt_tokens; few_shot_finetuning: the
                                                 `few_shot_finetuning` block, the run seed and the validation
                                                 seed's episodes file)

Benchmarks: `metaicl` (the 26 HR->LR test tasks from `allenai/metaicl-data`, per-file downloads at a pinned
revision) and `synthetic_icl` (the embedded twin: the task families of `sft_sources.synthetic_icl` held out of
instruction tuning, generated from the run's seed in MetaICL's file layout).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ga.data.sft.metaicl_split import HR_TO_LR_TEST_TASKS
from ga.eval.config import (
    ENCODE_STRATEGIES,
    LoraTrainingConfig,
    batch_size_setting,
    max_batch_tokens_setting,
    max_new_tokens_setting,
)
from ga.eval.family import check_names
from ga.eval.icl.methods import REGISTRY
from ga.section import ConfigError, ConfigSection, setting

ICL_BENCHMARKS = ("metaicl", "synthetic_icl")
ICL_METHODS = REGISTRY.names
PAPER_KS = [1, 2, 4, 8, 16]
PAPER_SEEDS = [13, 21, 42, 87, 100]
"""MetaICL's few-shot seeds (its k = 16 files exist for exactly these)."""
ZERO_SHOT = "zero_shot"
ZERO_SHOT_K = 0
"""zero_shot's k: it never sees a demonstration, so one job per task (at the first seed) stands for every k."""


@dataclass
class MetaiclEvalSourceConfig(ConfigSection):
    """MetaICL's processed few-shot files (`allenai/metaicl-data`, one file per task, k, seed and split)."""

    hub_id: str = setting("allenai/metaicl-data", "hub dataset repository (owner/name)", pattern=r"[^/\s]+/[^/\s]+")
    revision: str | None = setting(
        "9e999b5f6c4083a8c2309df57f06316a72de78ec",
        "pinned hub commit (40 hex digits); null: the default branch at download time",
        pattern=r"[0-9a-f]{40}",
    )
    file: str = setting(
        "data/{task}/{task}_{k}_{seed}_{split}.jsonl",
        "per-file path in the repository; {task}, {k}, {seed}, {split} (train or test)",
    )
    train_examples: int = setting(
        16, "k of the files read: each seed's training file holds this many examples (MetaICL publishes 16)", minimum=1
    )
    tasks: list[str] = setting(
        list(HR_TO_LR_TEST_TASKS), "tasks to evaluate, among MetaICL's 26 HR->LR test tasks", min_items=1
    )

    def check(self) -> None:
        for key in ("{task}", "{k}", "{seed}", "{split}"):
            if key not in self.file:
                raise ConfigError(f"file: {self.file!r} must contain {key}")
        unknown = [task for task in self.tasks if task not in HR_TO_LR_TEST_TASKS]
        if unknown:
            raise ConfigError(
                f"tasks: {unknown} are not MetaICL HR->LR test tasks (only those are held out of training)"
            )
        if len(set(self.tasks)) != len(self.tasks):
            repeated = sorted({task for task in self.tasks if self.tasks.count(task) > 1})
            raise ConfigError(f"tasks: listed more than once: {repeated}")


@dataclass
class SyntheticIclEvalConfig(ConfigSection):
    """The embedded twin: each held-out task of `sft_sources.synthetic_icl` (its `eval_families`) generated with
    the run's seed as MetaICL's files: a test set, and per seed a training file of `train_examples`."""

    tasks: list[str] | None = setting(
        None,
        "tasks `<family>-<index>` to evaluate (null: every task of the held-out families of sft_sources.synthetic_icl)",
        min_items=1,
    )
    train_examples: int = setting(16, "examples of each seed's training file (MetaICL's 16)", minimum=1)
    train_pool: int = setting(
        64,
        "distinct training examples per task that the seeds' files are drawn from "
        "(each seed: the first train_examples of a seeded shuffle)",
        minimum=1,
    )
    test_examples: int = setting(64, "test examples per task (inputs distinct from every training example)", minimum=1)

    def check(self) -> None:
        if self.train_pool < self.train_examples:
            raise ConfigError(f"train_pool: {self.train_pool} is less than train_examples ({self.train_examples})")


@dataclass
class FewShotFinetuningConfig(LoraTrainingConfig):
    """The few-shot fine-tuning baseline: a PEFT LoRA trained on the k demonstrations (one-turn chats "Input: x\\n
    Output:" -> y, loss on the answer), with early stopping on the validation loss over another seed's training
    examples (the next seed of `icl_eval.seeds`, cyclically; examples whose input is a demonstration or a test
    input left out). The paper fine-tuned all weights (lr 1e-5, at most 40 epochs, early stopping); a LoRA takes
    a larger rate."""

    lr: float = setting(1e-4, "peak learning rate of AdamW (constant after a linear warmup)", exclusive_minimum=0)
    epochs: int = setting(40, "passes over the demonstrations, at most", minimum=1)
    batch_size: int = setting(4, "demonstrations per optimizer step", minimum=1)
    max_tokens: int = setting(
        1024, "a demonstration chat longer than this many tokens is left out (counted)", minimum=8
    )
    patience: int | None = setting(
        3,
        "stop after this many epochs without a lower validation loss and keep the "
        "best epoch's weights (null: no early stopping)",
        minimum=1,
    )


IclMethodResources = REGISTRY.resources_section(
    "Cluster resources of each method's jobs (nothing here changes a result)."
)


@dataclass
class IclEvalConfig(ConfigSection):
    """In-context learning: k demonstrations of a task become an adapter (or a prompt, or a LoRA); every test
    example of the task is asked as "Input: x\\nOutput:" and scored by case-insensitive exact match."""

    section_doc: ClassVar[str] = "in-context learning: benchmark x task x k x seed x method, each cell one job"

    benchmarks: list[str] = setting(
        ["synthetic_icl"], f"benchmarks to evaluate, among {list(ICL_BENCHMARKS)}", min_items=1
    )
    ks: list[int] = setting(
        list(PAPER_KS), "numbers of demonstrations k (each seed's first k training examples)", min_items=1, minimum=1
    )
    seeds: list[int] = setting(
        list(PAPER_SEEDS),
        "seeds of the training files the demonstrations come from (MetaICL publishes 13, 21, 42, 87, 100)",
        min_items=1,
        minimum=0,
    )
    methods: list[str] = setting(list(ICL_METHODS), f"methods to evaluate, among {list(ICL_METHODS)}", min_items=1)
    max_test_examples: int | None = setting(
        None,
        "evaluate a seeded sample of at most this many test examples per "
        "task, the same for every k, seed and method (null: all of them; "
        "the authors kept a tenth); recorded in every result",
        minimum=1,
    )
    max_new_tokens: int = max_new_tokens_setting(10)
    batch_size: int = batch_size_setting("queries")
    max_batch_tokens: int | None = max_batch_tokens_setting()
    encode_strategy: str = setting(
        "sequential", "how the generative adapter encodes the demonstrations", choices=ENCODE_STRATEGIES
    )
    max_prompt_tokens: int | None = setting(
        None,
        "few-shot prompting keeps the last this many tokens of the "
        "demonstrations so the prompt fits (null: the base model's "
        "context limit)",
        minimum=1,
    )
    metaicl: MetaiclEvalSourceConfig = setting(default_factory=MetaiclEvalSourceConfig, doc="MetaICL source")
    synthetic_icl: SyntheticIclEvalConfig = setting(
        default_factory=SyntheticIclEvalConfig, doc="the embedded twin (held-out synthetic ICL tasks)"
    )
    few_shot_finetuning: FewShotFinetuningConfig = setting(
        default_factory=FewShotFinetuningConfig, doc="few-shot fine-tuning baseline"
    )
    resources: IclMethodResources = setting(default_factory=IclMethodResources, doc="cluster resources per method")

    def check(self) -> None:
        check_names("benchmarks", self.benchmarks, ICL_BENCHMARKS)
        check_names("methods", self.methods, ICL_METHODS)
        for key in ("ks", "seeds"):
            values = getattr(self, key)
            if len(set(values)) != len(values):
                raise ConfigError(f"{key}: must be distinct, got {values!r}")
        for benchmark in self.benchmarks:
            available = getattr(self, benchmark).train_examples
            if max(self.ks) > available:
                raise ConfigError(f"ks: {max(self.ks)} demonstrations, but {benchmark}.train_examples is {available}")
        if "few_shot_finetuning" in self.methods and len(self.seeds) < 2:
            raise ConfigError(
                "seeds: few_shot_finetuning stops early on another seed's examples, so it needs at "
                f"least two seeds, got {self.seeds!r}"
            )
