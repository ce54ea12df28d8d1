"""NarrativeQA (`deepmind/narrativeqa`, train): one record per story summary (docs/method.md#sft-mixture).

Native row (one per question): `document.summary.text`, `question.text`, `answers[].text` (the answer is the
first). Every row also embeds the whole story (`document.text`); it is never read.
Record: rows grouped by summary (in order of first appearance); the summary is the context (its own, lower
limit: `narrativeqa.max_context_tokens`); the session is its questions in order. No random choices.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from pathlib import Path

import polars as pl

from ga.data.hub import LoadSplit, download_split, load_hub_split
from ga.data.native import NativeRow, parquet_rows, text
from ga.data.sft.build import CountTokens, QAPair, RecordBuilder
from ga.data.sft.config import NarrativeqaConfig
from ga.data.sft.records import SourceProvenance, passage_source

NAME = "narrativeqa"
LICENCE = None
"""Not verified here (see the dataset card)."""
COLUMNS = ("document.summary.text", "question.text", "answers")


def provenance(cfg: NarrativeqaConfig) -> SourceProvenance:
    return SourceProvenance(NAME, cfg.hub_id, cfg.revision, cfg.config_name, cfg.split, (), LICENCE)


def download(cfg: NarrativeqaConfig, cache_dir: str | Path, load_split: LoadSplit = load_hub_split) -> Path:
    return download_split(NAME, cfg, cache_dir, load_split)


def read_native(path: str | Path) -> Iterator[NativeRow]:
    return parquet_rows(path, COLUMNS)


def convert(
    rows: Iterable[NativeRow], cfg: NarrativeqaConfig, count_tokens: CountTokens, rng: random.Random
) -> tuple[pl.DataFrame, dict[str, int]]:
    sessions: dict[str, list[QAPair]] = {}
    for row in rows:
        pair = QAPair(text(row, "question.text"), text(row, "answers[0].text"))
        sessions.setdefault(text(row, "document.summary.text"), []).append(pair)
    builder = RecordBuilder(NAME, cfg, count_tokens)
    for summary, session in sessions.items():
        if builder.full:
            break
        builder.add(summary, session, [passage_source(summary)])
    return builder.result()
