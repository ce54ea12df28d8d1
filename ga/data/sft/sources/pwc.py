"""PwC (`sggetao/PwC`, `PwC_train.jsonl`), the paper's alternative to LongAlpaca: one record per text with its
prompts (docs/method.md#sft-mixture).

Native row (one JSON object per line): `input` (the text), `prompt`, `answer` (fields as the authors' data
notebook reads them).
Record: rows grouped by `input` (in order of first appearance); `input` is the context (its own limit:
`pwc.max_context_tokens`); the session is its prompts in order. A prompt or answer longer than `max_turn_tokens`
is dropped with its pair (`qa_pair_turn_over_limit`); a text left without pairs is dropped
(`record_no_qa_pairs`). No random choices.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from pathlib import Path

import polars as pl

from ga.data.hub import FetchFile, download_file, fetch_hub_file
from ga.data.native import NativeRow, jsonl_rows, text
from ga.data.sft.build import CountTokens, QAPair, RecordBuilder
from ga.data.sft.config import PwcConfig
from ga.data.sft.records import SourceProvenance, passage_source

NAME = "pwc"
LICENCE = "Apache-2.0"


def provenance(cfg: PwcConfig) -> SourceProvenance:
    return SourceProvenance(NAME, cfg.hub_id, cfg.revision, None, "train", (cfg.file,), LICENCE)


def download(cfg: PwcConfig, cache_dir: str | Path, fetch_file: FetchFile = fetch_hub_file) -> Path:
    return download_file(NAME, cfg, cfg.file, cache_dir, fetch_file)


def read_native(path: str | Path) -> Iterator[NativeRow]:
    return jsonl_rows(path)


def convert(
    rows: Iterable[NativeRow], cfg: PwcConfig, count_tokens: CountTokens, rng: random.Random
) -> tuple[pl.DataFrame, dict[str, int]]:
    sessions: dict[str, list[QAPair]] = {}
    long_turns = 0
    for row in rows:
        session = sessions.setdefault(text(row, "input"), [])
        pair = QAPair(text(row, "prompt"), text(row, "answer"))
        if max(count_tokens(pair.question), count_tokens(pair.answer)) > cfg.max_turn_tokens:
            long_turns += 1
            continue
        session.append(pair)
    builder = RecordBuilder(NAME, cfg, count_tokens)
    builder.drop("qa_pair_turn_over_limit", long_turns)
    for passage, session in sessions.items():
        if builder.full:
            break
        builder.add(passage, session, [passage_source(passage)])
    return builder.result()
