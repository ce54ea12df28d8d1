"""ICL episodes: a task's examples for one seed (its training file and its test file), and the k-shot episodes
cut from them (docs/method.md#in-context-learning).

The episodes file (`write_episodes` / `read_episodes`): Parquet, one row per example of the seed's training file
(`split` = train, in file order) and of its test file (`split` = test, in file order), with `task`, `input`,
`output`, `options` as read, `position` (the row in its file) and `overlaps_test` (a training example whose input,
stripped, is also a test input). One file per benchmark x task x seed; it does not depend on k, the method or the
test-set cap, so adding any of those reuses it.

The k-shot draw (`demonstrations`): the first k training examples in file order, skipping those that overlap the
test set, so that no query (nor a test example identical to it) is ever among its own demonstrations. MetaICL wrote
a seed's k-shot file as the first k of one seeded shuffle of the training split, so the first k of its 16-shot file
is exactly its k-shot file for k <= 16; the draws are nested (k demonstrations are the first k of 2k) and depend on
nothing but the file. When overlaps leave fewer than k, the episode has fewer (`Episode.k_drawn` says how many).

The test-set cap (`sample_test`): at most n test examples, a sample seeded by the task alone (the same for every
seed, k and method), kept in file order.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandera.polars as pa
import polars as pl

from ga.data.contracts import DataError
from ga.data.native import jsonl_rows, strings, text
from ga.data.parquet import read_checked_parquet, write_checked_parquet
from ga.eval.icl.tasks import KINDS, TEST, TRAIN, TaskFiles

TEST_SAMPLE_KEY = "icl-test-sample"
"""Seeds the test-set sample with the task: random.Random(f"{TEST_SAMPLE_KEY}:{task}")."""


@dataclass(frozen=True)
class Example:
    position: int
    """Row of the example in its file (0-based)."""
    input: str
    output: str
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Episodes:
    """One task's examples for one seed."""

    benchmark: str
    task: str
    kind: str
    seed: int
    train: tuple[Example, ...]
    """The seed's training examples that may be demonstrations (file order; those overlapping the test set left
    out)."""
    test: tuple[Example, ...]
    overlapping: int
    """Training examples left out because their input is also a test input."""


def _key(source: str) -> str:
    return source.strip()


# ---------------------------------------------------------------- building the file from a task's files
def _examples(path: Path, task: str) -> list[Example]:
    examples = []
    for row in jsonl_rows(path):
        row_task = text(row, "task")
        if row_task != task:
            raise DataError(row.file, row.row, "task", f"{row_task!r} in the file of task {task!r}")
        examples.append(Example(row.row, text(row, "input"), text(row, "output"), tuple(strings(row, "options"))))
    if not examples:
        raise DataError(str(path), None, None, f"no examples of task {task!r}")
    return examples


def episodes_frame(benchmark: str, kind: str, files: TaskFiles) -> pl.DataFrame:
    """The episodes file's rows for one task and seed (see the module doc)."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not one of {KINDS}")
    train, test = _examples(files.train, files.task), _examples(files.test, files.task)
    test_inputs = {_key(example.input) for example in test}
    rows = [
        {
            "benchmark": benchmark,
            "task": files.task,
            "kind": kind,
            "seed": files.seed,
            "split": split,
            "position": example.position,
            "input": example.input,
            "output": example.output,
            "options": list(example.options),
            "overlaps_test": split == TRAIN and _key(example.input) in test_inputs,
        }
        for split, examples in ((TRAIN, train), (TEST, test))
        for example in examples
    ]
    return pl.DataFrame(rows, schema=EPISODES_DTYPES)


EPISODES_DTYPES = {
    "benchmark": pl.Utf8,
    "task": pl.Utf8,
    "kind": pl.Utf8,
    "seed": pl.Int64,
    "split": pl.Utf8,
    "position": pl.Int64,
    "input": pl.Utf8,
    "output": pl.Utf8,
    "options": pl.List(pl.Utf8),
    "overlaps_test": pl.Boolean,
}


def _non_blank(data: pa.PolarsData) -> pl.LazyFrame:
    return data.lazyframe.select(pl.col(data.key).str.strip_chars().str.len_chars() > 0)


def _one_value(data: pa.PolarsData) -> pl.LazyFrame:
    return data.lazyframe.select(pl.col(data.key).n_unique() == 1)


def _both_splits(data: pa.PolarsData) -> pl.LazyFrame:
    return data.lazyframe.select((pl.col("split") == TRAIN).any() & (pl.col("split") == TEST).any())


def _positions_unique(data: pa.PolarsData) -> pl.LazyFrame:
    return data.lazyframe.select(pl.len().over("split", "position") == 1)


EPISODES_SCHEMA = pa.DataFrameSchema(
    {
        "benchmark": pa.Column(pl.Utf8, nullable=False, checks=pa.Check(_one_value, name="one_benchmark")),
        "task": pa.Column(pl.Utf8, nullable=False, checks=pa.Check(_one_value, name="one_task")),
        "kind": pa.Column(
            pl.Utf8, nullable=False, checks=[pa.Check.isin(list(KINDS)), pa.Check(_one_value, name="one_kind")]
        ),
        "seed": pa.Column(pl.Int64, nullable=False, checks=pa.Check(_one_value, name="one_seed")),
        "split": pa.Column(pl.Utf8, nullable=False, checks=pa.Check.isin([TRAIN, TEST])),
        "position": pa.Column(pl.Int64, nullable=False, checks=pa.Check.ge(0)),
        "input": pa.Column(pl.Utf8, nullable=False, checks=pa.Check(_non_blank, name="non_empty")),
        "output": pa.Column(pl.Utf8, nullable=False, checks=pa.Check(_non_blank, name="non_empty")),
        "options": pa.Column(pl.List(pl.Utf8), nullable=False),
        "overlaps_test": pa.Column(pl.Boolean, nullable=False),
    },
    checks=[
        pa.Check(_both_splits, name="train_and_test_examples"),
        pa.Check(_positions_unique, name="one_row_per_split_and_position"),
    ],
    strict=True,
    name="icl_episodes",
)


def write_episodes(frame: pl.DataFrame, path: str | Path) -> Path:
    """The episodes file, checked against `EPISODES_SCHEMA` before it is written (atomically)."""
    return write_checked_parquet(EPISODES_SCHEMA, frame, path)


def read_episodes(path: str | Path) -> Episodes:
    """A task's examples for one seed; a DataError names the file, row and column of a defect."""
    frame = read_checked_parquet(EPISODES_SCHEMA, path)
    first = frame.row(0, named=True)

    def examples(split: str, overlapping: bool | None) -> tuple[Example, ...]:
        rows = frame.filter(pl.col("split") == split)
        if overlapping is not None:
            rows = rows.filter(pl.col("overlaps_test") == overlapping)
        return tuple(
            Example(row["position"], row["input"], row["output"], tuple(row["options"]))
            for row in rows.sort("position").iter_rows(named=True)
        )

    return Episodes(
        benchmark=first["benchmark"],
        task=first["task"],
        kind=first["kind"],
        seed=first["seed"],
        train=examples(TRAIN, False),
        test=examples(TEST, None),
        overlapping=len(examples(TRAIN, True)),
    )


# ---------------------------------------------------------------- k-shot draw and test sample
def demonstrations(episodes: Episodes, k: int) -> tuple[Example, ...]:
    """The first k training examples that overlap no test input (fewer when the file has fewer)."""
    if k < 0:
        raise ValueError(f"k must be at least 0, got {k}")
    return episodes.train[:k]


def sample_test(test: Sequence[Example], task: str, max_examples: int | None) -> tuple[Example, ...]:
    """All test examples, or a sample of at most `max_examples` seeded by the task, in file order."""
    if max_examples is None or len(test) <= max_examples:
        return tuple(test)
    chosen = sorted(random.Random(f"{TEST_SAMPLE_KEY}:{task}").sample(range(len(test)), max_examples))
    return tuple(test[i] for i in chosen)


def validation_examples(episodes: Episodes, other: Episodes, k: int) -> tuple[Example, ...]:
    """Early-stopping examples for an episode of `episodes` with k demonstrations: `other` seed's training
    examples whose input is neither a demonstration's nor a test input (overlaps are already out of `train`)."""
    if (other.benchmark, other.task) != (episodes.benchmark, episodes.task) or other.seed == episodes.seed:
        raise ValueError(
            f"validation examples must come from another seed of the same task: got "
            f"{other.benchmark}/{other.task}/{other.seed} for "
            f"{episodes.benchmark}/{episodes.task}/{episodes.seed}"
        )
    shown = {_key(example.input) for example in demonstrations(episodes, k)}
    tested = {_key(example.input) for example in episodes.test}
    return tuple(example for example in other.train if _key(example.input) not in shown | tested)
