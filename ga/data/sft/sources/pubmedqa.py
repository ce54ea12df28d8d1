"""PubMedQA (`qiaojin/PubMedQA`, config `pqa_labeled`, train): one record per question
(docs/method.md#sft-mixture).

Native row: `question`, `context.contexts[]` (the abstract's sections), `final_decision` (yes / no / maybe),
`long_answer`.
Record: the sections joined by `contexts_separator`; one QA pair whose answer is "Yes." / "No." / "Maybe.", a
space, and the long answer. No random choices.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from pathlib import Path

import polars as pl

from ga.data.contracts import DataError
from ga.data.hub import LoadSplit, download_split, load_hub_split
from ga.data.native import NativeRow, parquet_rows, text, texts
from ga.data.sft.build import CountTokens, QAPair, RecordBuilder
from ga.data.sft.config import PubmedqaConfig
from ga.data.sft.records import SourceProvenance, passage_source

NAME = "pubmedqa"
LICENCE = None
"""Not verified here (see the dataset card)."""
COLUMNS = ("question", "context.contexts", "final_decision", "long_answer")
DECISIONS = {"yes": "Yes.", "no": "No.", "maybe": "Maybe."}
"""`final_decision` -> the answer's opening sentence."""


def provenance(cfg: PubmedqaConfig) -> SourceProvenance:
    return SourceProvenance(NAME, cfg.hub_id, cfg.revision, cfg.config_name, cfg.split, (), LICENCE)


def download(cfg: PubmedqaConfig, cache_dir: str | Path, load_split: LoadSplit = load_hub_split) -> Path:
    return download_split(NAME, cfg, cache_dir, load_split)


def read_native(path: str | Path) -> Iterator[NativeRow]:
    return parquet_rows(path, COLUMNS)


def convert(
    rows: Iterable[NativeRow], cfg: PubmedqaConfig, count_tokens: CountTokens, rng: random.Random
) -> tuple[pl.DataFrame, dict[str, int]]:
    builder = RecordBuilder(NAME, cfg, count_tokens)
    for row in rows:
        if builder.full:
            break
        decision = text(row, "final_decision")
        if decision.strip().lower() not in DECISIONS:
            raise DataError(
                row.file, row.row, "final_decision", f"expected one of {sorted(DECISIONS)}, got {decision!r:.80}"
            )
        answer = f"{DECISIONS[decision.strip().lower()]} {text(row, 'long_answer')}"
        context = cfg.contexts_separator.join(texts(row, "context.contexts"))
        builder.add(context, [QAPair(text(row, "question"), answer)], [passage_source(context)])
    return builder.result()
