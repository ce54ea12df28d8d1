"""The Parquet type of a `ga.eval.contexts.Question`, shared by the families' files (the knowledge-QA contexts file,
the personalization conversations file): the column's dtype, its rows both ways, and its pandera checks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import polars as pl

from ga.eval.contexts import Question

if TYPE_CHECKING:
    import pandera.polars as pa

QUESTION_DTYPE = pl.Struct({"question_id": pl.Utf8, "question": pl.Utf8, "references": pl.List(pl.Utf8)})


def question_rows(questions: Iterable[Question]) -> list[dict]:
    """A `questions` cell: one `QUESTION_DTYPE` struct per question."""
    return [{"question_id": q.question_id, "question": q.question, "references": list(q.references)} for q in questions]


def questions_of(rows: Sequence[dict]) -> tuple[Question, ...]:
    """The questions of a `questions` cell (`question_rows` read back)."""
    return tuple(Question(q["question_id"], q["question"], tuple(q["references"])) for q in rows)


def non_blank(data: pa.PolarsData) -> pl.LazyFrame:
    """pandera check: the string column holds no blank (empty or whitespace-only) value."""
    return data.lazyframe.select(pl.col(data.key).str.strip_chars().str.len_chars() > 0)


def each_non_blank(expr: pl.Expr) -> pl.Expr:
    """True where every item of a list of strings is a non-blank string (an empty list holds)."""
    return expr.list.eval((pl.element().str.strip_chars().str.len_chars() > 0).fill_null(False)).list.all()


def questions_well_formed(data: pa.PolarsData) -> pl.LazyFrame:
    """pandera check of a `questions` column: every question has a non-blank id and text, and references."""
    field = pl.col(data.key).list.eval
    ids = field(pl.element().struct.field("question_id"))
    texts = field(pl.element().struct.field("question"))
    references_ok = field(pl.element().struct.field("references").is_not_null()).list.all()
    return data.lazyframe.select(each_non_blank(ids) & each_non_blank(texts) & references_ok)
