"""MS MARCO (`microsoft/ms_marco`, config `v1.1`, train): several selected passages with their queries per record
(docs/method.md#sft-mixture).

Native row (one per query): `query`, `answers[]`, and `passages`, a dict of lists: `is_selected[]`,
`passage_text[]`, `url[]`.
Record:
- a query's passage is its first selected passage; a query without one is dropped
  (`query_no_selected_passage`), as is a query without an answer (`answers` empty, or `answers[0]` blank or one of
  `no_answer_texts`: `query_no_answer`); the answer is `answers[0]`;
- queries are grouped by passage (in order of first appearance); passages left without queries go;
- each run of `passages_per_record` consecutive passages makes one record (a shorter run at the end is dropped:
  `passage_leftover`, counted in passages): the passages plus 0..`distractors` random passages of other groups,
  shuffled and joined by blank lines; the session is the passages' query groups in a random order.
Random calls per record: distractor count, distractor draw, passage shuffle, query-group shuffle.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from pathlib import Path

import polars as pl

from ga.data.contracts import DataError
from ga.data.hub import LoadSplit, download_split, load_hub_split
from ga.data.native import NativeRow, integers, parquet_rows, strings, text
from ga.data.sft.build import CountTokens, PassagePool, QAPair, RecordBuilder, context_with_distractors
from ga.data.sft.config import MsmarcoConfig
from ga.data.sft.records import SourceProvenance

NAME = "msmarco"
LICENCE = None
"""Not verified here: MS MARCO is released under its own terms for non-commercial research (see its card)."""
COLUMNS = ("query", "answers", "passages.is_selected", "passages.passage_text")
SELECTED = 1


def provenance(cfg: MsmarcoConfig) -> SourceProvenance:
    return SourceProvenance(NAME, cfg.hub_id, cfg.revision, cfg.config_name, cfg.split, (), LICENCE)


def download(cfg: MsmarcoConfig, cache_dir: str | Path, load_split: LoadSplit = load_hub_split) -> Path:
    return download_split(NAME, cfg, cache_dir, load_split)


def read_native(path: str | Path) -> Iterator[NativeRow]:
    return parquet_rows(path, COLUMNS)


def _selected_passage(row: NativeRow) -> str | None:
    selected = integers(row, "passages.is_selected")
    passages = strings(row, "passages.passage_text")
    if len(selected) != len(passages):
        raise DataError(
            row.file, row.row, "passages.is_selected", f"{len(selected)} flags for {len(passages)} passages"
        )
    if SELECTED not in selected:
        return None
    index = selected.index(SELECTED)
    return text(row, f"passages.passage_text[{index}]")


def convert(
    rows: Iterable[NativeRow], cfg: MsmarcoConfig, count_tokens: CountTokens, rng: random.Random
) -> tuple[pl.DataFrame, dict[str, int]]:
    no_answer = {answer.strip() for answer in cfg.no_answer_texts}
    groups: dict[str, list[QAPair]] = {}
    unselected = unanswered = 0
    for row in rows:
        passage = _selected_passage(row)
        if passage is None:
            unselected += 1
            continue
        group = groups.setdefault(passage, [])
        answers = strings(row, "answers")
        if not answers or not answers[0].strip() or answers[0].strip() in no_answer:
            unanswered += 1
            continue
        group.append(QAPair(text(row, "query"), answers[0]))
    passages = [passage for passage, group in groups.items() if group]
    builder = RecordBuilder(NAME, cfg, count_tokens)
    builder.drop("query_no_selected_passage", unselected)
    builder.drop("query_no_answer", unanswered)
    pool = PassagePool(passages)
    size = cfg.passages_per_record
    whole_runs = len(passages) // size * size
    builder.drop("passage_leftover", len(passages) - whole_runs)
    for start in range(0, whole_runs, size):
        if builder.full:
            break
        own = passages[start : start + size]
        context, sources = context_with_distractors(rng, pool, own, cfg.distractors, cfg.passage_separator)
        sessions = [groups[passage] for passage in own]
        rng.shuffle(sessions)
        builder.add(context, [pair for session in sessions for pair in session], sources)
    return builder.result()
