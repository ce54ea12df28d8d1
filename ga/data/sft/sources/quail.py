"""QuAIL (`textmachinelab/quail`, train): one record per passage with its answerable questions
(docs/method.md#sft-mixture).

Native row (one per question): `context`, `question`, `answers[]` (the options), `correct_answer_id`.
Record: rows grouped by passage (in order of first appearance); the passage is the context; the session is its
questions in order, each answered by `answers[correct_answer_id]`. A question whose correct option is
`unanswerable_answer` ("not enough information") is dropped (`question_unanswerable`); a passage left without
questions is dropped (`record_no_qa_pairs`). No random choices.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from pathlib import Path

import polars as pl

from ga.data.contracts import DataError
from ga.data.hub import LoadSplit, download_split, load_hub_split
from ga.data.native import NativeRow, integer, parquet_rows, strings, text
from ga.data.sft.build import CountTokens, QAPair, RecordBuilder
from ga.data.sft.config import QuailConfig
from ga.data.sft.records import SourceProvenance, passage_source

NAME = "quail"
LICENCE = "CC BY-NC-SA"
COLUMNS = ("context", "question", "answers", "correct_answer_id")


def provenance(cfg: QuailConfig) -> SourceProvenance:
    return SourceProvenance(NAME, cfg.hub_id, cfg.revision, cfg.config_name, cfg.split, (), LICENCE)


def download(cfg: QuailConfig, cache_dir: str | Path, load_split: LoadSplit = load_hub_split) -> Path:
    return download_split(NAME, cfg, cache_dir, load_split)


def read_native(path: str | Path) -> Iterator[NativeRow]:
    return parquet_rows(path, COLUMNS)


def convert(
    rows: Iterable[NativeRow], cfg: QuailConfig, count_tokens: CountTokens, rng: random.Random
) -> tuple[pl.DataFrame, dict[str, int]]:
    sessions: dict[str, list[QAPair]] = {}
    unanswerable = cfg.unanswerable_answer.strip().casefold()
    unanswerable_questions = 0
    for row in rows:
        options = strings(row, "answers")
        correct = integer(row, "correct_answer_id")
        if not 0 <= correct < len(options):
            raise DataError(
                row.file, row.row, "correct_answer_id", f"{correct} is not an index of the {len(options)} answers"
            )
        answer = text(row, f"answers[{correct}]")
        session = sessions.setdefault(text(row, "context"), [])
        if answer.strip().casefold() == unanswerable:
            unanswerable_questions += 1
            continue
        session.append(QAPair(text(row, "question"), answer))
    builder = RecordBuilder(NAME, cfg, count_tokens)
    builder.drop("question_unanswerable", unanswerable_questions)
    for passage, session in sessions.items():
        if builder.full:
            break
        builder.add(passage, session, [passage_source(passage)])
    return builder.result()
