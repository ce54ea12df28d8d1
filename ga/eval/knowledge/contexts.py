"""What a knowledge-QA evaluation asks: contexts made of a benchmark's passages, and the questions about them.

A benchmark source yields `Passage`s in its own order, each with the questions asked about it. `group_contexts`
concatenates unique passages in order into contexts of at most k tokens; every question of a context's passages is
asked of that context (so every question lands in exactly one context per k).

Grouping rule (`group_contexts`), linear in the benchmark's text:
- passages are deduplicated by `passage_id` (the first occurrence's text wins; the questions of later occurrences
  are added to it, a question repeated exactly is asked once);
- each passage's tokens are counted once; a group grows, passage by passage in order, while the estimate
  sum(passage tokens) + (passages - 1) x separator tokens stays within k;
- a closed group's joined text is counted exactly (a tokenizer can merge tokens across a boundary, so the count of
  a concatenation may differ from the estimate); while the exact count exceeds k and the group has more than one
  passage, its last passage moves to the next group and the text is counted again (rare: one more count per
  passage moved). So every context holds at most k tokens, except:
- a passage longer than k on its own is a context of its own, kept whole (its questions need all of it):
  `over_length` counts such contexts, so that a report can show them;
- the last group is kept however short it is.
Context ids are `{benchmark}-{k}-{index:05d}`, numbered in order from 0.

The contexts file (`write_contexts` / `read_contexts`): Parquet, one row per context, the passage ids as a list and
the questions as a list of structs; written atomically and checked against `CONTEXTS_SCHEMA` on read (a DataError
names the file, the row and the column).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pandera.polars as pa
import polars as pl

from ga.data.parquet import read_checked_parquet, write_checked_parquet
from ga.eval.contexts import PASSAGE_SEPARATOR, Context, Passage, Question
from ga.eval.questions import (
    QUESTION_DTYPE,
    each_non_blank,
    non_blank,
    question_rows,
    questions_of,
    questions_well_formed,
)

CountTokens = Callable[[str], int]


# ---------------------------------------------------------------- grouping
def unique_passages(passages: Sequence[Passage]) -> list[Passage]:
    """Passages deduplicated by id, in order of first occurrence; a duplicate's new questions join the first one
    (a question it repeats is asked once).

    Raises ValueError when a question id belongs to two passages (it would be asked twice) or names two different
    questions (one would be lost)."""
    texts: dict[str, str] = {}
    questions: dict[str, dict[str, Question]] = {}
    owner: dict[str, str] = {}
    for passage in passages:
        if not passage.text.strip():
            raise ValueError(f"passage {passage.passage_id!r} has no text")
        texts.setdefault(passage.passage_id, passage.text)
        own = questions.setdefault(passage.passage_id, {})
        for question in passage.questions:
            first = owner.setdefault(question.question_id, passage.passage_id)
            if first != passage.passage_id:
                raise ValueError(
                    f"question {question.question_id!r} belongs to passages {first!r} and {passage.passage_id!r}"
                )
            if own.setdefault(question.question_id, question) != question:
                raise ValueError(
                    f"question id {question.question_id!r} names two different questions of passage "
                    f"{passage.passage_id!r}"
                )
    return [Passage(passage_id, text, tuple(questions[passage_id].values())) for passage_id, text in texts.items()]


def join_passages(passages: Sequence[Passage]) -> str:
    return PASSAGE_SEPARATOR.join(passage.text for passage in passages)


def group_contexts(passages: Sequence[Passage], k: int, count_tokens: CountTokens, benchmark: str) -> list[Context]:
    """Unique passages, in order, grouped into contexts of at most `k` tokens (the module docstring has the rule).

    `count_tokens` counts the base model's tokens of a text (no special tokens): it is called once per unique
    passage, once for the separator and once per context (plus once per passage moved back)."""
    if k < 1:
        raise ValueError(f"context length k must be at least 1, got {k}")
    unique = unique_passages(passages)
    sizes = [count_tokens(passage.text) for passage in unique]
    separator = count_tokens(PASSAGE_SEPARATOR)
    contexts: list[Context] = []
    start = 0
    while start < len(unique):
        end, estimate = start + 1, sizes[start]
        while end < len(unique) and estimate + separator + sizes[end] <= k:
            estimate += separator + sizes[end]
            end += 1
        text = join_passages(unique[start:end])
        num_tokens = sizes[start] if end == start + 1 else count_tokens(text)
        while num_tokens > k and end - start > 1:
            end -= 1
            text = join_passages(unique[start:end])
            num_tokens = sizes[start] if end == start + 1 else count_tokens(text)
        group = unique[start:end]
        contexts.append(
            Context(
                context_id=context_id(benchmark, k, len(contexts)),
                benchmark=benchmark,
                length=k,
                text=text,
                num_tokens=num_tokens,
                passage_ids=tuple(passage.passage_id for passage in group),
                questions=tuple(question for passage in group for question in passage.questions),
            )
        )
        start = end
    return contexts


def context_id(benchmark: str, k: int, index: int) -> str:
    return f"{benchmark}-{k}-{index:05d}"


def over_length(contexts: Sequence[Context]) -> int:
    """How many contexts exceed their length k (each a single passage longer than k, kept whole)."""
    return sum(context.num_tokens > context.length for context in contexts)


# ---------------------------------------------------------------- the contexts file
CONTEXTS_DTYPES = {
    "context_id": pl.Utf8,
    "benchmark": pl.Utf8,
    "length": pl.Int64,
    "text": pl.Utf8,
    "num_tokens": pl.Int64,
    "passage_ids": pl.List(pl.Utf8),
    "questions": pl.List(QUESTION_DTYPE),
}


def _has_passages(data: pa.PolarsData) -> pl.LazyFrame:
    ids = pl.col(data.key)
    return data.lazyframe.select((ids.list.len() > 0) & each_non_blank(ids) & (ids.list.n_unique() == ids.list.len()))


def _id_names_benchmark_and_length(data: pa.PolarsData) -> pl.LazyFrame:
    prefix = pl.concat_str(pl.col("benchmark"), pl.lit("-"), pl.col("length").cast(pl.Utf8), pl.lit("-"))
    return data.lazyframe.select(pl.col("context_id").str.starts_with(prefix).fill_null(False))


def _questions_asked_once(data: pa.PolarsData) -> pl.LazyFrame:
    """Per row: none of its question ids occurs elsewhere among the contexts of the same benchmark and length."""
    ids = (
        data.lazyframe.with_row_index("_row")
        .select(
            "_row",
            "benchmark",
            "length",
            pl.col("questions").list.eval(pl.element().struct.field("question_id")).alias("_id"),
        )
        .explode("_id")
        .with_columns(_once=(pl.len().over("benchmark", "length", "_id") == 1) | pl.col("_id").is_null())
    )
    return (
        ids.group_by("_row", maintain_order=True)
        .agg(pl.col("_once").all().alias("questions_asked_once"))
        .sort("_row")
        .select("questions_asked_once")
    )


CONTEXTS_SCHEMA = pa.DataFrameSchema(
    {
        "context_id": pa.Column(pl.Utf8, nullable=False, unique=True, checks=pa.Check(non_blank, name="non_empty")),
        "benchmark": pa.Column(pl.Utf8, nullable=False, checks=pa.Check(non_blank, name="non_empty")),
        "length": pa.Column(pl.Int64, nullable=False, checks=pa.Check.ge(1)),
        "text": pa.Column(pl.Utf8, nullable=False, checks=pa.Check(non_blank, name="non_empty")),
        "num_tokens": pa.Column(pl.Int64, nullable=False, checks=pa.Check.ge(1)),
        "passage_ids": pa.Column(
            pl.List(pl.Utf8), nullable=False, checks=pa.Check(_has_passages, name="distinct_non_empty_passage_ids")
        ),
        "questions": pa.Column(
            pl.List(QUESTION_DTYPE),
            nullable=False,
            checks=pa.Check(questions_well_formed, name="question_ids_and_texts_non_empty"),
        ),
    },
    checks=[
        pa.Check(_id_names_benchmark_and_length, name="context_id_names_benchmark_and_length"),
        pa.Check(_questions_asked_once, name="each_question_in_one_context_per_length"),
    ],
    strict=True,
    name="knowledge_contexts",
)


def contexts_frame(contexts: Sequence[Context]) -> pl.DataFrame:
    rows = [
        {
            "context_id": c.context_id,
            "benchmark": c.benchmark,
            "length": c.length,
            "text": c.text,
            "num_tokens": c.num_tokens,
            "passage_ids": list(c.passage_ids),
            "questions": question_rows(c.questions),
        }
        for c in contexts
    ]
    return pl.DataFrame(rows, schema=CONTEXTS_DTYPES)


def write_contexts(contexts: Sequence[Context], path: str | Path) -> Path:
    """The contexts file, checked against `CONTEXTS_SCHEMA` before it is written (atomically)."""
    return write_checked_parquet(CONTEXTS_SCHEMA, contexts_frame(contexts), path)


def read_contexts(path: str | Path) -> list[Context]:
    """The contexts of a contexts file, in file order; a DataError names the file, row and column of a defect."""
    frame = read_checked_parquet(CONTEXTS_SCHEMA, path)
    return [
        Context(
            context_id=row["context_id"],
            benchmark=row["benchmark"],
            length=row["length"],
            text=row["text"],
            num_tokens=row["num_tokens"],
            passage_ids=tuple(row["passage_ids"]),
            questions=questions_of(row["questions"]),
        )
        for row in frame.iter_rows(named=True)
    ]
