"""MetaICL HR->LR training tasks (`allenai/metaicl-data`, `data/{task}/{task}_16384_100_train.jsonl`): records of
demonstrations and held-out examples (docs/method.md#sft-mixture).

Native row (one JSON object per line of a task's file): `task`, `input`, `output` (for multiple-choice tasks the
text of the correct option), `options`.
Records, per task in `tasks` order: the task's examples in a random order are consumed greedily, record after
record (at most `max_groups` per task):
- demonstrations: up to `max_demonstrations` examples, "Input: x\\nOutput: y" joined by blank lines, as many as
  fit the context limit; an example too long to be a demonstration on its own is dropped
  (`example_over_context_limit`);
- questions: the next up to `max_queries` examples, "Input: x\\nOutput:" -> y, as many as fit the QA budget; an
  example too long to be a question on its own is dropped (`example_over_conversation_budget`);
- examples left when the file runs out before a record has both are counted as `example_leftover`.
The authors sized every record of a task alike from its mean input length in words (64 and 4 at most, within
2,048 and 512 words); filling each record up to the token limits uses the same caps and keeps every record within
them. Ids are `metaicl.<n>.<task>`.

No HR->LR *test* task is ever read: the config refuses them, and the download, the reading of each file (its task
and every row's `task`) and `check_no_test_tasks` on the final records fail loudly if one appears.
Random calls per task: one shuffle of its examples.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import polars as pl

from ga.data.contracts import DataError
from ga.data.hub import FetchFile, download_file, fetch_hub_file
from ga.data.native import NativeRow, jsonl_rows, text
from ga.data.sft.build import CountTokens, QAPair, RecordBuilder, TokenLimits
from ga.data.sft.config import MetaiclConfig
from ga.data.sft.metaicl_split import METAICL_DATASET, ensure_training_task
from ga.data.sft.records import SourceProvenance

NAME = METAICL_DATASET
LICENCE = "CC BY-NC 4.0"
TRAIN_FILE_SUFFIX = "_16384_100_train.jsonl"
"""Meta-training files: `{task}` + this suffix (k = 16384 examples, seed 100)."""


def provenance(cfg: MetaiclConfig) -> SourceProvenance:
    files = tuple(cfg.file.format(task=task) for task in cfg.tasks)
    return SourceProvenance(NAME, cfg.hub_id, cfg.revision, None, "train", files, LICENCE)


def download(cfg: MetaiclConfig, cache_dir: str | Path, fetch_file: FetchFile = fetch_hub_file) -> list[Path]:
    """One file per training task; a test task is refused before anything is fetched."""
    for task in cfg.tasks:
        ensure_training_task(task, cfg.file.format(task=task))
    return [download_file(NAME, cfg, cfg.file.format(task=task), cache_dir, fetch_file) for task in cfg.tasks]


def file_task(path: Path) -> str:
    """The task a MetaICL file holds, from its name `{task}_{k}_{seed}_{split}.jsonl` in folder `{task}`."""
    task = path.parent.name
    if not path.name.startswith(f"{task}_"):
        raise DataError(
            str(path),
            None,
            None,
            f"not a MetaICL task file: expected data/{{task}}/{{task}}_..."
            f".jsonl, and {path.name!r} does not start with {task + '_'!r}",
        )
    return task


def read_native(paths: Sequence[str | Path]) -> Iterator[NativeRow]:
    """Rows of the task files, in order; a test task's file, or a row whose `task` is a test task or another task
    than its file's, raises a DataError naming the task, the file and the row."""
    for path in map(Path, paths):
        task = file_task(path)
        ensure_training_task(task, str(path))
        for row in jsonl_rows(path):
            row_task = text(row, "task")
            ensure_training_task(row_task, row.file, row.row, "task")
            if row_task != task:
                raise DataError(row.file, row.row, "task", f"{row_task!r} in the file of task {task!r}")
            yield row


class _TaskExamples:
    """A task's examples with their token costs, counted once and only when needed."""

    def __init__(self, examples: list[tuple[str, str]], cfg: MetaiclConfig, count_tokens: CountTokens):
        self.examples, self.cfg, self.count_tokens = examples, cfg, count_tokens
        self._demonstration_tokens: dict[int, int] = {}
        self._question_tokens: dict[int, int] = {}

    def demonstration(self, index: int) -> str:
        source, target = self.examples[index]
        return self.cfg.demonstration_template.format(input=source, output=target)

    def pair(self, index: int) -> QAPair:
        source, target = self.examples[index]
        return QAPair(self.cfg.question_template.format(input=source), target)

    def demonstration_tokens(self, index: int) -> int:
        if index not in self._demonstration_tokens:
            self._demonstration_tokens[index] = self.count_tokens(self.demonstration(index))
        return self._demonstration_tokens[index]

    def question_tokens(self, index: int) -> int:
        if index not in self._question_tokens:
            pair = self.pair(index)
            self._question_tokens[index] = self.count_tokens(pair.question) + self.count_tokens(pair.answer)
        return self._question_tokens[index]


def _take(
    queue: deque, most: int, budget: int, cost, separator_tokens: int, builder: RecordBuilder, too_long: str
) -> list[int]:
    """Examples from the front of `queue` while at most `most` fit `budget`; one that cannot fit even alone is
    dropped and counted as `too_long`."""
    taken, used = [], 0
    while queue and len(taken) < most:
        tokens = cost(queue[0]) + (separator_tokens if taken else 0)
        if used + tokens <= budget:
            taken.append(queue.popleft())
            used += tokens
        elif taken:
            break
        else:
            queue.popleft()
            builder.drop(too_long)
    return taken


def _convert_task(
    task: str,
    examples: _TaskExamples,
    cfg: MetaiclConfig,
    builder: RecordBuilder,
    limits: TokenLimits,
    separator_tokens: int,
    rng: random.Random,
) -> None:
    order = list(range(len(examples.examples)))
    rng.shuffle(order)
    queue = deque(order)
    for _ in range(cfg.max_groups):
        if builder.full or not queue:
            return
        demonstrations = _take(
            queue,
            cfg.max_demonstrations,
            limits.max_context_tokens,
            examples.demonstration_tokens,
            separator_tokens,
            builder,
            "example_over_context_limit",
        )
        questions = _take(
            queue,
            cfg.max_queries,
            limits.max_conversation_tokens,
            examples.question_tokens,
            0,
            builder,
            "example_over_conversation_budget",
        )
        if not demonstrations or not questions:
            builder.drop("example_leftover", len(demonstrations) + len(questions))
            return
        context = cfg.demonstration_separator.join(examples.demonstration(i) for i in demonstrations)
        builder.add(context, [examples.pair(i) for i in questions], [f"task:{task}"], tag=task)


def convert(
    rows: Iterable[NativeRow], cfg: MetaiclConfig, count_tokens: CountTokens, rng: random.Random
) -> tuple[pl.DataFrame, dict[str, int]]:
    by_task: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        task = text(row, "task")
        ensure_training_task(task, row.file, row.row, "task")
        by_task.setdefault(task, []).append((text(row, "input"), text(row, "output")))
    builder = RecordBuilder(NAME, cfg, count_tokens)
    limits = TokenLimits.of(cfg)
    separator_tokens = count_tokens(cfg.demonstration_separator)
    for task, examples in by_task.items():
        _convert_task(task, _TaskExamples(examples, cfg, count_tokens), cfg, builder, limits, separator_tokens, rng)
    return builder.result()
