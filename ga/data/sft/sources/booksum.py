"""BookSum (`kmfoda/booksum`, `train.csv`, chapter level): one record per chapter (docs/method.md#sft-mixture).

Native row (CSV): `book_id` (book title, a '.', and the part, e.g. `Persuasion.chapter 3`), `summary_id`,
`chapter` (the text), `summary_text`; other columns are not read.
Record: context `context_template` ("{book}, {summary_id}:" and the chapter, where {book} is `book_id` up to its
first '.'); one QA pair: `question_template` ("Summarize {book}, {summary_id}") -> `summary_text`. The context
limit applies to the whole context (`booksum.max_context_tokens`). No random choices.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from pathlib import Path

import polars as pl

from ga.data.hub import FetchFile, download_file, fetch_hub_file
from ga.data.native import NativeRow, csv_rows, text
from ga.data.sft.build import CountTokens, QAPair, RecordBuilder
from ga.data.sft.config import BooksumConfig
from ga.data.sft.records import SourceProvenance

NAME = "booksum"
LICENCE = "BSD-3-Clause"
COLUMNS = ("book_id", "summary_id", "chapter", "summary_text")


def provenance(cfg: BooksumConfig) -> SourceProvenance:
    return SourceProvenance(NAME, cfg.hub_id, cfg.revision, None, "train", (cfg.file,), LICENCE)


def download(cfg: BooksumConfig, cache_dir: str | Path, fetch_file: FetchFile = fetch_hub_file) -> Path:
    return download_file(NAME, cfg, cfg.file, cache_dir, fetch_file)


def read_native(path: str | Path) -> Iterator[NativeRow]:
    return csv_rows(path, COLUMNS)


def convert(
    rows: Iterable[NativeRow], cfg: BooksumConfig, count_tokens: CountTokens, rng: random.Random
) -> tuple[pl.DataFrame, dict[str, int]]:
    builder = RecordBuilder(NAME, cfg, count_tokens)
    for row in rows:
        if builder.full:
            break
        fields = {
            "book": text(row, "book_id").split(".", 1)[0].strip(),
            "summary_id": text(row, "summary_id"),
            "chapter": text(row, "chapter"),
        }
        question = cfg.question_template.format(**fields)
        builder.add(
            cfg.context_template.format(**fields),
            [QAPair(question, text(row, "summary_text"))],
            [f"book:{fields['book']}"],
        )
    return builder.result()
