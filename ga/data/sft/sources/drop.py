"""DROP (`ucinlp/drop`, train): one record per passage with all its questions (docs/method.md#sft-mixture).

Native row (one per question): `passage`, `question`, `answers_spans.spans[]` (the answer is the first span).
Record: rows grouped by passage (in order of first appearance); the passage plus 0..`distractors` random other
passages (never itself), shuffled and joined by blank lines; the session is the passage's questions in order.
Random calls per passage: distractor count, distractor draw, shuffle.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from pathlib import Path

import polars as pl

from ga.data.hub import LoadSplit, download_split, load_hub_split
from ga.data.native import NativeRow, first_text, parquet_rows, text
from ga.data.sft.build import CountTokens, PassagePool, QAPair, RecordBuilder, context_with_distractors
from ga.data.sft.config import DropConfig
from ga.data.sft.records import SourceProvenance

NAME = "drop"
LICENCE = "CC BY-SA"
COLUMNS = ("passage", "question", "answers_spans.spans")


def provenance(cfg: DropConfig) -> SourceProvenance:
    return SourceProvenance(NAME, cfg.hub_id, cfg.revision, cfg.config_name, cfg.split, (), LICENCE)


def download(cfg: DropConfig, cache_dir: str | Path, load_split: LoadSplit = load_hub_split) -> Path:
    return download_split(NAME, cfg, cache_dir, load_split)


def read_native(path: str | Path) -> Iterator[NativeRow]:
    return parquet_rows(path, COLUMNS)


def convert(
    rows: Iterable[NativeRow], cfg: DropConfig, count_tokens: CountTokens, rng: random.Random
) -> tuple[pl.DataFrame, dict[str, int]]:
    sessions: dict[str, list[QAPair]] = {}
    for row in rows:
        answer = first_text(row, "answers_spans.spans")
        sessions.setdefault(text(row, "passage"), []).append(QAPair(text(row, "question"), answer))
    builder = RecordBuilder(NAME, cfg, count_tokens)
    pool = PassagePool(sessions)
    for passage, session in sessions.items():
        if builder.full:
            break
        context, sources = context_with_distractors(rng, pool, [passage], cfg.distractors, cfg.passage_separator)
        builder.add(context, session, sources)
    return builder.result()
