"""CoQA (`stanfordnlp/coqa`, train): one record per story (docs/method.md#sft-mixture).

Native row: `story`, `questions[]`, `answers.input_text[]` (the i-th answer answers the i-th question).
Record: the story plus 0..`distractors` random other stories (distinct texts, never the story itself or a copy of it),
shuffled and joined by blank lines; the session is the story's questions and answers in order.
Random calls per story: distractor count, distractor draw, shuffle.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from pathlib import Path

import polars as pl

from ga.data.contracts import DataError
from ga.data.hub import LoadSplit, download_split, load_hub_split
from ga.data.native import NativeRow, parquet_rows, text, texts
from ga.data.sft.build import CountTokens, PassagePool, QAPair, RecordBuilder, context_with_distractors
from ga.data.sft.config import CoqaConfig
from ga.data.sft.records import SourceProvenance

NAME = "coqa"
LICENCE = None
"""Not verified here: CoQA's passages come from several domains under different licences (see its card)."""
COLUMNS = ("story", "questions", "answers.input_text")


def provenance(cfg: CoqaConfig) -> SourceProvenance:
    return SourceProvenance(NAME, cfg.hub_id, cfg.revision, cfg.config_name, cfg.split, (), LICENCE)


def download(cfg: CoqaConfig, cache_dir: str | Path, load_split: LoadSplit = load_hub_split) -> Path:
    return download_split(NAME, cfg, cache_dir, load_split)


def read_native(path: str | Path) -> Iterator[NativeRow]:
    return parquet_rows(path, COLUMNS)


def convert(
    rows: Iterable[NativeRow], cfg: CoqaConfig, count_tokens: CountTokens, rng: random.Random
) -> tuple[pl.DataFrame, dict[str, int]]:
    stories, sessions = [], []
    for row in rows:
        questions, answers = texts(row, "questions"), texts(row, "answers.input_text")
        if len(answers) != len(questions):
            raise DataError(
                row.file, row.row, "answers.input_text", f"{len(answers)} answers for {len(questions)} questions"
            )
        stories.append(text(row, "story"))
        sessions.append([QAPair(q, a) for q, a in zip(questions, answers)])
    builder = RecordBuilder(NAME, cfg, count_tokens)
    pool = PassagePool(stories)
    for story, session in zip(stories, sessions):
        if builder.full:
            break
        context, sources = context_with_distractors(rng, pool, [story], cfg.distractors, cfg.passage_separator)
        builder.add(context, session, sources)
    return builder.result()
