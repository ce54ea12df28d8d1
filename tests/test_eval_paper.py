"""The paper's published knowledge-QA numbers as data (resources/paper/knowledge_qa.yaml, ga/eval/knowledge/paper.py)."""

from __future__ import annotations

import polars as pl
import pytest

from ga.data.contracts import DataError
from ga.eval.knowledge.config import PAPER_LENGTHS
from ga.eval.knowledge.paper import PAPER_COLUMNS, paper_knowledge_qa

MISTRAL = "Mistral-7B-Instruct"


def cell(frame: pl.DataFrame, model: str, benchmark: str, method: str, length: int | None) -> float:
    length_matches = pl.col("length").is_null() if length is None else pl.col("length") == length
    rows = frame.filter(
        (pl.col("model") == model) & (pl.col("benchmark") == benchmark) & (pl.col("method") == method) & length_matches
    )
    assert rows.height == 1
    return rows["f1"].item()


def test_published_cells():
    frame = paper_knowledge_qa()
    assert dict(frame.schema) == PAPER_COLUMNS
    assert frame.height == 4 * 7 + 6 + 2 * 3
    assert set(frame["metric"]) == {"F1, single shortest reference (authors' scoring)"}
    assert [cell(frame, MISTRAL, "squad", "generative_adapter", k) for k in PAPER_LENGTHS] == [
        48.8,
        43.0,
        39.9,
        35.9,
        33.8,
        30.3,
        28.0,
    ]
    assert [cell(frame, MISTRAL, "streamingqa", "in_context", k) for k in PAPER_LENGTHS] == [
        47.2,
        48.7,
        48.1,
        48.7,
        48.0,
        46.0,
        39.3,
    ]
    assert cell(frame, MISTRAL, "squad", "in_context", 16384) == 38.6
    assert cell(frame, MISTRAL, "streamingqa", "generative_adapter", 512) == 51.5
    assert [
        cell(frame, MISTRAL, "squad", m, None) for m in ("closed_book", "qa_finetuning", "continual_pretraining")
    ] == [10.8, 20.7, 30.0]
    assert [
        cell(frame, MISTRAL, "streamingqa", m, None) for m in ("closed_book", "qa_finetuning", "continual_pretraining")
    ] == [13.6, 19.5, 22.2]
    assert [
        cell(frame, "Llama-2-7B-Chat", b, "generative_adapter", k)
        for b in ("squad", "streamingqa")
        for k in (8192, 16384, 32768)
    ] == [28.2, 24.9, 23.6, 28.7, 26.0, 25.7]


@pytest.mark.parametrize(
    "entry, column",
    [
        ("{model: M, benchmark: nq, method: in_context, f1: 1.0}", "benchmark"),
        ("{model: M, benchmark: squad, method: sft, f1: 1.0}", "method"),
        ("{model: M, benchmark: squad, method: in_context, f1: {512: 101}}", "f1.512"),
        ("{model: M, benchmark: squad, method: in_context, f1: {0: 10}}", "f1"),
    ],
)
def test_bad_entries_name_the_file_row_and_key(tmp_path, entry, column):
    path = tmp_path / "paper.yaml"
    path.write_text(
        f"metric: F1\nresults:\n  - {{model: M, benchmark: squad, method: closed_book, f1: 5}}\n  - {entry}\n"
    )
    with pytest.raises(DataError, match="paper.yaml: row 1") as err:
        paper_knowledge_qa(path)
    assert err.value.column == column
