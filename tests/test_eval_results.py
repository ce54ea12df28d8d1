"""Scoring and summarising knowledge-QA jobs (ga/eval/results.py, ga/eval/knowledge/results.py), the knowledge_eval stage's params, and the table
beside the paper's numbers."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from ga import stages
from ga.eval.knowledge.paper import paper_knowledge_qa
from ga.eval.knowledge.results import PAPER_COLUMN, markdown_table, summary_table
from ga.eval.results import NO_REFERENCES, read_summaries, write_results
from ga.run_config import RunConfig

REPO = Path(__file__).resolve().parents[1]


def row(question_id, prediction, references, outcome="answered"):
    return {
        "context_id": "entities-256-00000",
        "question_id": question_id,
        "question": f"q {question_id}?",
        "references": list(references),
        "prediction": prediction,
        "outcome": outcome,
    }


def cost(seconds, flops=1000.0):
    return {
        "context_id": "entities-256-00000",
        "length": 256,
        "context_tokens": 200,
        "contextualize_seconds": seconds,
        "contextualize_flops": flops,
        "per_query_seconds": 0.1,
        "per_query_flops": 10.0,
        "peak_memory_mb": 5.0,
        "storage_floats": 64,
        "questions": 3,
        "notes": {"truncated": 0},
    }


def test_results_score_every_answered_question_and_count_the_rest(tmp_path):
    rows = [
        row("a", "Paris", ["Paris", "the city of Paris"]),
        row("b", "", ["London"]),
        row("c", "anything", [], outcome=NO_REFERENCES),
    ]
    job = {
        "benchmark": "entities",
        "method": "closed_book",
        "length": 256,
        "contexts_available": 3,
        "contexts_evaluated": 1,
        "sample_contexts": 1,
    }
    summary = write_results(rows, [cost(2.0), cost(4.0)], tmp_path / "job", job)
    assert summary["questions"] == 3 and summary["scored"] == 2
    assert summary["outcomes"] == {"answered": 2, NO_REFERENCES: 1}
    assert summary["f1"] == pytest.approx(50.0) and summary["em"] == pytest.approx(50.0)  # (1 + 0) / 2, percent
    assert summary["contextualize_seconds"] == pytest.approx(3.0) and summary["sample_contexts"] == 1
    predictions = pl.read_parquet(tmp_path / "job" / "predictions.parquet")
    assert predictions.height == 3  # the question without references is kept, unscored
    assert predictions.filter(pl.col("question_id") == "c")["f1"].to_list() == [None]
    assert json.loads(pl.read_parquet(tmp_path / "job" / "costs.parquet")["notes"][0]) == {"truncated": 0}
    assert read_summaries([tmp_path / "job"]) == [json.loads((tmp_path / "job" / "summary.json").read_text())]


def test_failed_write_leaves_no_results_folder(tmp_path):
    with pytest.raises(KeyError):
        write_results([{"outcome": "answered"}], [], tmp_path / "job", {})
    assert not (tmp_path / "job").exists()


def summary_of(benchmark, method, length, f1_shortest):
    return {
        "benchmark": benchmark,
        "method": method,
        "length": length,
        "f1": f1_shortest + 1,
        "em": 1.0,
        "f1_shortest": f1_shortest,
        "em_shortest": 1.0,
        "rouge_l_recall": 2.0,
        "questions": 4,
        "scored": 4,
        "contexts_evaluated": 1,
        "contexts_available": 1,
        "context_tokens": 500.0,
        "contextualize_flops": 1e12,
        "contextualize_seconds": 1.0,
        "per_query_flops": 2e9,
        "per_query_seconds": 0.5,
        "peak_memory_mb": 10.0,
        "storage_floats": 100.0,
    }


def test_summary_table_puts_the_papers_f1_beside_the_like_for_like_column():
    summaries = [
        summary_of("squad", "generative_adapter", 512, 40.0),
        summary_of("squad", "closed_book", 1024, 9.0),
        summary_of("entities", "closed_book", 256, 3.0),
    ]
    table = summary_table(summaries, paper_knowledge_qa(), "Mistral-7B-Instruct")
    cells = {(r["benchmark"], r["method"], r["length"]): r[PAPER_COLUMN] for r in table.iter_rows(named=True)}
    assert cells[("squad", "generative_adapter", 512)] == pytest.approx(48.8)
    assert cells[("squad", "closed_book", 1024)] == pytest.approx(10.8)  # length-independent baseline
    assert cells[("entities", "closed_book", 256)] is None  # the paper has no such cell
    assert table["benchmark"].to_list() == ["entities", "squad", "squad"]  # sorted
    text = markdown_table(table, "t")
    assert "| squad | generative_adapter | 512 | 41.0 | 1.0 | 40.0 | 48.8 |" in text
    no_paper = summary_table(summaries, paper_knowledge_qa(), None)
    assert no_paper[PAPER_COLUMN].null_count() == no_paper.height


def test_a_methods_job_depends_on_its_own_settings_only():
    config = RunConfig.load(REPO / "config" / "config.yaml")
    changed = RunConfig.load(REPO / "config" / "config.yaml", ["knowledge_eval.bm25.k1=1.0"])
    for method in config.knowledge_eval.methods:
        same = stages.depends_on(
            "knowledge_eval", config, benchmark="entities", method=method, length="256"
        ) == stages.depends_on("knowledge_eval", changed, benchmark="entities", method=method, length="256")
        assert same == (method != "bm25"), method
    streaming = RunConfig.load(REPO / "config" / "config.yaml", ["knowledge_eval.encode_strategy=streaming"])
    assert stages.depends_on(
        "knowledge_eval", streaming, benchmark="entities", method="generative_adapter", length="256"
    ) != stages.depends_on("knowledge_eval", config, benchmark="entities", method="generative_adapter", length="256")
    # the evaluation never makes training stale
    for stage in ("pretrain", "finetune", "sft_data"):
        assert (
            stages.depends_on(stage, config) == stages.depends_on(stage, changed) == stages.depends_on(stage, streaming)
        )
