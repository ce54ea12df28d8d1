"""StreamingQA as CaMeLS prepared it: a CSV the user supplies (no public copy can be downloaded).

Layout: a header and one row per question, with the columns `question`, `answers` (every reference answer, joined
by backslashes) and `text` (the evidence article); other columns are allowed and ignored, except `qa_id`
(StreamingQA's own question id): when the file has it, it is each question's id (non-blank and unique), otherwise
the id is `row-{i}` with i the 0-based data row (stable for a given file).
Passages: the unique `text` articles in order of first appearance, passage id `article-{j}` (from 0), each with its
questions in row order. References: `answers` split on backslashes, each stripped, blank ones left out.

A question whose answers are all blank (or whose `answers` cell is empty) is kept with `references=()`: the runner
records it as a `no_references` outcome and counts it, never drops it silently. A missing column, an empty or
unreadable file, a blank question or article, or a repeated `qa_id` is a DataError naming the file, the row and the
column. Every cell is read as text (so an answer such as "007" keeps its zeros).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl

from ga.data.contracts import DataError
from ga.data.native import NativeRow, csv_rows, text
from ga.eval.contexts import Passage, Question

NAME = "streamingqa"
LICENCE = None
"""Not verified here (StreamingQA is DeepMind's; CaMeLS's prepared files carry no licence of their own)."""
COLUMNS = ("question", "answers", "text")
ID_COLUMN = "qa_id"
ANSWER_SEPARATOR = "\\"


def _columns(path: str | Path) -> tuple[str, ...]:
    """The columns to read: the layout's, plus the id column when the header has it."""
    try:
        header = pl.read_csv(path, n_rows=0, infer_schema=False).columns
    except (OSError, pl.exceptions.PolarsError):
        header = []  # csv_rows reports the defect with the file's name
    return COLUMNS + ((ID_COLUMN,) if ID_COLUMN in header else ())


def read_native(path: str | Path) -> Iterator[NativeRow]:
    if not Path(path).is_file():
        raise DataError(str(path), None, None, "no such file (StreamingQA is a CSV the user supplies)")
    empty = True
    try:
        for row in csv_rows(path, _columns(path)):
            empty = False
            yield row
    except DataError as err:  # the CSV parser's messages run over several lines with advice: keep the first part
        raise DataError(err.file, err.row, err.column, " ".join(err.problem.split("\n\n")[0].split())) from None
    if empty:
        raise DataError(str(path), None, None, "no rows (one row per question expected)")


def references(row: NativeRow) -> tuple[str, ...]:
    answers = row.data["answers"]
    if answers is None:
        return ()
    return tuple(answer.strip() for answer in answers.split(ANSWER_SEPARATOR) if answer.strip())


def _questions(path: str | Path) -> Iterator[tuple[str, Question]]:
    """(article, question) of every row, in row order."""
    seen: set[str] = set()
    for row in read_native(path):
        if ID_COLUMN in row.data:
            question_id = text(row, ID_COLUMN)
            if question_id in seen:
                raise DataError(row.file, row.row, ID_COLUMN, f"repeated question id {question_id!r}")
            seen.add(question_id)
        else:
            question_id = f"row-{row.row}"
        yield text(row, "text"), Question(question_id, text(row, "question"), references(row))


def passages(csv_path: str | Path) -> list[Passage]:
    """The unique articles in order of first appearance, each with its questions."""
    articles: dict[str, list[Question]] = {}
    for article, question in _questions(csv_path):
        articles.setdefault(article, []).append(question)
    return [
        Passage(f"article-{j}", article, tuple(questions)) for j, (article, questions) in enumerate(articles.items())
    ]


def qa_pairs(csv_path: str | Path) -> list[tuple[str, str]]:
    """(question, first reference) of every row (a training CSV in the same layout, for QA fine-tuning); a question
    without references teaches nothing and is left out."""
    return [(question.question, question.references[0]) for _, question in _questions(csv_path) if question.references]
