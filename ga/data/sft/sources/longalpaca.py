"""LongAlpaca-12k (`Yukang/LongAlpaca-12k`, `LongAlpaca-12k.json`): one record per example
(docs/method.md#sft-mixture).

Native row (one object of a JSON array): `instruction` (a document followed by a request about it), `output`.
Record: the context is `instruction` up to and including the last end-of-document marker (`marker_pattern`,
"Now the ... ends."); the one question is the rest of `instruction`, its answer `output`. An instruction without
the marker is dropped (`record_no_marker`), as is one with nothing after it (`record_no_question`). No random
choices.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import polars as pl

from ga.data.hub import FetchFile, download_file, fetch_hub_file
from ga.data.native import NativeRow, json_array_rows, text
from ga.data.sft.build import CountTokens, QAPair, RecordBuilder
from ga.data.sft.config import LongalpacaConfig
from ga.data.sft.records import SourceProvenance, passage_source

NAME = "longalpaca"
LICENCE = "CC BY-NC"


def provenance(cfg: LongalpacaConfig) -> SourceProvenance:
    return SourceProvenance(NAME, cfg.hub_id, cfg.revision, None, "train", (cfg.file,), LICENCE)


def download(cfg: LongalpacaConfig, cache_dir: str | Path, fetch_file: FetchFile = fetch_hub_file) -> Path:
    return download_file(NAME, cfg, cfg.file, cache_dir, fetch_file)


def read_native(path: str | Path) -> Iterator[NativeRow]:
    return json_array_rows(path)


def split_instruction(instruction: str, marker: re.Pattern) -> tuple[str, str] | None:
    """(context up to and including the last marker, the rest), both stripped; None without a marker."""
    match = marker.match(instruction)
    if match is None:
        return None
    return instruction[: match.start("request")].strip(), match.group("request").strip()


def convert(
    rows: Iterable[NativeRow], cfg: LongalpacaConfig, count_tokens: CountTokens, rng: random.Random
) -> tuple[pl.DataFrame, dict[str, int]]:
    # greedy text before the marker: the context ends at the marker's last match
    marker = re.compile(rf"(?s)(?P<document>.*)(?:{cfg.marker_pattern})(?P<request>.*)\Z")
    builder = RecordBuilder(NAME, cfg, count_tokens)
    for row in rows:
        if builder.full:
            break
        parts = split_instruction(text(row, "instruction"), marker)
        if parts is None:
            builder.drop("record_no_marker")
            continue
        context, question = parts
        if not question:
            builder.drop("record_no_question")
            continue
        builder.add(context, [QAPair(question, text(row, "output"))], [passage_source(context)])
    return builder.result()
