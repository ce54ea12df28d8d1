"""The instruction-tuning converters, offline: fixtures written in each source's native layout (Parquet with the
nested fields as published, BookSum's CSV, LongAlpaca's one JSON array, PwC's and MetaICL's JSONL), read with the
real readers and converted; the expected records are written out by hand (docs/method.md#sft-mixture).

Token counts here are whitespace words (`count_words`): a deterministic stand-in for the base model's tokenizer.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ga.data.contracts import DataError
from ga.data.sft.build import seeded_rng
from ga.data.sft.config import SftSourcesConfig
from ga.data.sft.metaicl_split import (
    HR_TO_LR_TEST_TASKS,
    HR_TO_LR_TRAIN_TASKS,
    check_no_test_tasks,
    ensure_training_task,
)
from ga.data.sft.records import RECORD_SCHEMA, passage_source, provenance_frame, validate_records
from ga.data.sft.sources import MIXTURE_SOURCES, SFT_SOURCES
from ga.section import ConfigError


def count_words(text: str) -> int:
    return len(text.split())


def settings(**sections) -> SftSourcesConfig:
    return SftSourcesConfig.from_dict(sections)


def run(name: str, path, config: SftSourcesConfig | None = None, seed: int = 0):
    module = SFT_SOURCES[name]
    config = config or settings()
    return module.convert(module.read_native(path), config.source(name), count_words, seeded_rng(seed, name))


def turns(*pairs) -> list[dict]:
    out = []
    for question, answer in pairs:
        out += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return out


# ---------------------------------------------------------------- native layouts (schemas as published)
COQA = pa.schema(
    [
        ("source", pa.string()),
        ("story", pa.string()),
        ("questions", pa.list_(pa.string())),
        (
            "answers",
            pa.struct(
                [
                    ("input_text", pa.list_(pa.string())),
                    ("answer_start", pa.list_(pa.int32())),
                    ("answer_end", pa.list_(pa.int32())),
                ]
            ),
        ),
    ]
)
DROP = pa.schema(
    [
        ("section_id", pa.string()),
        ("query_id", pa.string()),
        ("passage", pa.string()),
        ("question", pa.string()),
        ("answers_spans", pa.struct([("spans", pa.list_(pa.string())), ("types", pa.list_(pa.string()))])),
    ]
)
_TEXT_TOKENS = pa.struct([("text", pa.string()), ("tokens", pa.list_(pa.string()))])
NARRATIVEQA = pa.schema(
    [
        (
            "document",
            pa.struct(
                [
                    ("id", pa.string()),
                    ("kind", pa.string()),
                    ("url", pa.string()),
                    ("file_size", pa.int32()),
                    ("word_count", pa.int32()),
                    ("start", pa.string()),
                    ("end", pa.string()),
                    (
                        "summary",
                        pa.struct(
                            [
                                ("text", pa.string()),
                                ("tokens", pa.list_(pa.string())),
                                ("url", pa.string()),
                                ("title", pa.string()),
                            ]
                        ),
                    ),
                    ("text", pa.string()),
                ]
            ),
        ),
        ("question", _TEXT_TOKENS),
        ("answers", pa.list_(_TEXT_TOKENS)),
    ]
)
PUBMEDQA = pa.schema(
    [
        ("pubid", pa.int32()),
        ("question", pa.string()),
        (
            "context",
            pa.struct(
                [
                    ("contexts", pa.list_(pa.string())),
                    ("labels", pa.list_(pa.string())),
                    ("meshes", pa.list_(pa.string())),
                    ("reasoning_required_pred", pa.list_(pa.string())),
                    ("reasoning_free_pred", pa.list_(pa.string())),
                ]
            ),
        ),
        ("long_answer", pa.string()),
        ("final_decision", pa.string()),
    ]
)
QUAIL = pa.schema(
    [
        ("id", pa.string()),
        ("context_id", pa.string()),
        ("question_id", pa.string()),
        ("domain", pa.string()),
        ("metadata", pa.struct([("author", pa.string()), ("title", pa.string()), ("url", pa.string())])),
        ("context", pa.string()),
        ("question", pa.string()),
        ("question_type", pa.string()),
        ("answers", pa.list_(pa.string())),
        ("correct_answer_id", pa.int32()),
    ]
)
MSMARCO = pa.schema(
    [
        ("answers", pa.list_(pa.string())),
        (
            "passages",
            pa.struct(
                [
                    ("is_selected", pa.list_(pa.int32())),
                    ("passage_text", pa.list_(pa.string())),
                    ("url", pa.list_(pa.string())),
                ]
            ),
        ),
        ("query", pa.string()),
        ("query_id", pa.int32()),
        ("query_type", pa.string()),
        ("wellFormedAnswers", pa.list_(pa.string())),
    ]
)
BOOKSUM_COLUMNS = [
    "bid",
    "is_aggregate",
    "source",
    "chapter_path",
    "summary_path",
    "book_id",
    "summary_id",
    "content",
    "summary",
    "chapter",
    "chapter_length",
    "summary_name",
    "summary_url",
    "summary_text",
    "summary_analysis",
    "summary_length",
    "analysis_length",
]


def write_parquet(path: Path, schema: pa.Schema, rows: list[dict]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def coqa_row(story, questions, answers):
    return {
        "source": "wikipedia",
        "story": story,
        "questions": questions,
        "answers": {"input_text": answers, "answer_start": [0] * len(answers), "answer_end": [1] * len(answers)},
    }


def drop_row(passage, question, spans, index=0):
    return {
        "section_id": "history_1",
        "query_id": f"q{index}",
        "passage": passage,
        "question": question,
        "answers_spans": {"spans": spans, "types": ["span"] * len(spans)},
    }


def narrativeqa_row(summary, question, answers, doc="d1"):
    return {
        "document": {
            "id": doc,
            "kind": "gutenberg",
            "url": "http://x",
            "file_size": 10,
            "word_count": 3,
            "start": "START",
            "end": "END",
            "summary": {"text": summary, "tokens": summary.split(), "url": "http://w", "title": "T"},
            "text": "THE WHOLE BOOK " * 50,
        },
        "question": {"text": question, "tokens": question.split()},
        "answers": [{"text": answer, "tokens": answer.split()} for answer in answers],
    }


def pubmedqa_row(pubid, question, contexts, long_answer, decision):
    return {
        "pubid": pubid,
        "question": question,
        "context": {
            "contexts": contexts,
            "labels": ["BACKGROUND"] * len(contexts),
            "meshes": ["Humans"],
            "reasoning_required_pred": ["yes"],
            "reasoning_free_pred": ["yes"],
        },
        "long_answer": long_answer,
        "final_decision": decision,
    }


def quail_row(context, question, answers, correct, index=0):
    return {
        "id": f"f{index}",
        "context_id": "f",
        "question_id": str(index),
        "domain": "fiction",
        "metadata": {"author": "A", "title": "T", "url": "http://q"},
        "context": context,
        "question": question,
        "question_type": "Causality",
        "answers": answers,
        "correct_answer_id": correct,
    }


def msmarco_row(query, answers, passages, selected, index=0):
    return {
        "answers": answers,
        "passages": {
            "is_selected": selected,
            "passage_text": passages,
            "url": [f"http://m/{i}" for i in range(len(passages))],
        },
        "query": query,
        "query_id": index,
        "query_type": "DESCRIPTION",
        "wellFormedAnswers": [],
    }


def write_booksum(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=BOOKSUM_COLUMNS)
        writer.writeheader()
        for index, row in enumerate(rows):
            writer.writerow({**{column: f"{column}-{index}" for column in BOOKSUM_COLUMNS}, **row})
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def metaicl_file(root: Path, task: str, examples: list[tuple[str, str]], row_task: str | None = None) -> Path:
    rows = [{"task": row_task or task, "input": x, "output": y, "options": []} for x, y in examples]
    return write_jsonl(root / "data" / task / f"{task}_16384_100_train.jsonl", rows)


# ---------------------------------------------------------------- each source: fixture in, exact records out
NO_DISTRACTORS = {"coqa": {"distractors": 0}, "drop": {"distractors": 0}}


def passages(*texts: str) -> list[str]:
    """The context sources of a context made of these passages (ga/data/sft/records.py)."""
    return sorted(passage_source(text) for text in texts)


def test_coqa(tmp_path):
    path = write_parquet(
        tmp_path / "coqa.parquet",
        COQA,
        [
            coqa_row("The cat sat on the mat.", ["Where did the cat sit?", "What sat?"], ["on the mat", "the cat"]),
            coqa_row("Ann has two dogs.", ["Who has dogs?", "How many?"], ["Ann", "two"]),
        ],
    )
    records, drops = run("coqa", path, settings(**NO_DISTRACTORS))
    assert records.to_dicts() == [
        {
            "id": "coqa.0",
            "context": "The cat sat on the mat.",
            "conversations": turns(("Where did the cat sit?", "on the mat"), ("What sat?", "the cat")),
            "context_sources": passages("The cat sat on the mat."),
        },
        {
            "id": "coqa.1",
            "context": "Ann has two dogs.",
            "conversations": turns(("Who has dogs?", "Ann"), ("How many?", "two")),
            "context_sources": passages("Ann has two dogs."),
        },
    ]
    assert drops == {}


def test_drop_groups_questions_by_passage(tmp_path):
    path = write_parquet(
        tmp_path / "drop.parquet",
        DROP,
        [
            drop_row("In 1990 the team won 3 games.", "How many games?", ["3"], 0),
            drop_row("In 1990 the team won 3 games.", "Which year?", ["1990", "in 1990"], 1),
            drop_row("Rain fell for 2 days.", "How long did it rain?", ["2 days"], 2),
            drop_row("In 1990 the team won 3 games.", "Who won?", ["the team"], 3),
        ],
    )
    records, drops = run("drop", path, settings(**NO_DISTRACTORS))
    assert records.to_dicts() == [
        {
            "id": "drop.0",
            "context": "In 1990 the team won 3 games.",
            "conversations": turns(("How many games?", "3"), ("Which year?", "1990"), ("Who won?", "the team")),
            "context_sources": passages("In 1990 the team won 3 games."),
        },
        {
            "id": "drop.1",
            "context": "Rain fell for 2 days.",
            "conversations": turns(("How long did it rain?", "2 days")),
            "context_sources": passages("Rain fell for 2 days."),
        },
    ]
    assert drops == {}


def test_narrativeqa_groups_by_summary_and_drops_long_summaries(tmp_path):
    long_summary = "A summary of exactly eight words in all."
    path = write_parquet(
        tmp_path / "narrativeqa.parquet",
        NARRATIVEQA,
        [
            narrativeqa_row("Tom finds gold.", "What does Tom find?", ["Gold.", "gold"]),
            narrativeqa_row(long_summary, "How long?", ["Eight words."], doc="d2"),
            narrativeqa_row("Tom finds gold.", "Who finds gold?", ["Tom"]),
        ],
    )
    records, drops = run("narrativeqa", path, settings(narrativeqa={"max_context_tokens": 7}))
    assert records.to_dicts() == [
        {
            "id": "narrativeqa.0",
            "context": "Tom finds gold.",
            "conversations": turns(("What does Tom find?", "Gold."), ("Who finds gold?", "Tom")),
            "context_sources": passages("Tom finds gold."),
        },
    ]
    assert drops == {"record_context_over_limit": 1}
    # the dataset's own limit (2,048 by default) applies, not the global one
    assert settings(max_context_tokens=5).source("narrativeqa").max_context_tokens == 2048


def test_pubmedqa(tmp_path):
    path = write_parquet(
        tmp_path / "pubmedqa.parquet",
        PUBMEDQA,
        [
            pubmedqa_row(1, "Does aspirin help?", ["Background text.", "Results text."], "It helps a little.", "yes"),
            pubmedqa_row(2, "Is X linked to Y?", ["Only section."], "Evidence is mixed.", "maybe"),
        ],
    )
    records, drops = run("pubmedqa", path)
    assert records.to_dicts() == [
        {
            "id": "pubmedqa.0",
            "context": "Background text.\nResults text.",
            "conversations": turns(("Does aspirin help?", "Yes. It helps a little.")),
            "context_sources": passages("Background text.\nResults text."),
        },
        {
            "id": "pubmedqa.1",
            "context": "Only section.",
            "conversations": turns(("Is X linked to Y?", "Maybe. Evidence is mixed.")),
            "context_sources": passages("Only section."),
        },
    ]
    assert drops == {}


def test_quail_drops_unanswerable_questions(tmp_path):
    options = ["the dog", "the cat", "not enough information", "a bird"]
    path = write_parquet(
        tmp_path / "quail.parquet",
        QUAIL,
        [
            quail_row("Passage A.", "Who ran?", options, 1, 0),
            quail_row("Passage A.", "Why did it run?", options, 2, 1),
            quail_row("Passage B.", "What colour?", ["red", "Not enough information"], 1, 2),
            quail_row("Passage A.", "What flew?", options, 3, 3),
        ],
    )
    records, drops = run("quail", path)
    assert records.to_dicts() == [
        {
            "id": "quail.0",
            "context": "Passage A.",
            "conversations": turns(("Who ran?", "the cat"), ("What flew?", "a bird")),
            "context_sources": passages("Passage A."),
        },
    ]
    assert drops == {"question_unanswerable": 2, "record_no_qa_pairs": 1}


def test_booksum_csv(tmp_path):
    chapter = 'First line, with a comma.\nSecond "quoted" line.'
    path = write_booksum(
        tmp_path / "train.csv",
        [
            {
                "book_id": "Persuasion.chapter 3",
                "summary_id": "chapter 3",
                "chapter": chapter,
                "summary_text": "Anne remembers Wentworth.",
            },
            {
                "book_id": "Hamlet.act 1.scene 2",
                "summary_id": "scene 2",
                "chapter": "Enter the king.",
                "summary_text": "The court gathers.",
            },
        ],
    )
    records, drops = run("booksum", path)
    assert records.to_dicts() == [
        {
            "id": "booksum.0",
            "context": "Persuasion, chapter 3:\n\n" + chapter,
            "conversations": turns(("Summarize Persuasion, chapter 3", "Anne remembers Wentworth.")),
            "context_sources": ["book:Persuasion"],
        },
        {
            "id": "booksum.1",
            "context": "Hamlet, scene 2:\n\nEnter the king.",
            "conversations": turns(("Summarize Hamlet, scene 2", "The court gathers.")),
            "context_sources": ["book:Hamlet"],
        },
    ]
    assert drops == {}


def test_longalpaca_json_array(tmp_path):
    path = tmp_path / "LongAlpaca-12k.json"
    path.write_text(
        json.dumps(
            [
                {
                    "instruction": "Below is a paper.\nThe paper begins.\nAlpha beta. Now the paper ends. \nWhat is alpha?",
                    "output": "A letter.",
                    "file": "paper_0",
                },
                {"instruction": "Summarize this text without a marker.", "output": "No.", "file": "x"},
                {
                    "instruction": "Doc one. Now the story ends. More. Now the book ends.\n Summarize it.",
                    "output": "A summary.",
                    "file": "book_1",
                },
                {"instruction": "Text. Now the paper ends.   ", "output": "Nothing asked.", "file": "paper_2"},
            ]
        )
    )
    records, drops = run("longalpaca", path)
    assert records.to_dicts() == [
        {
            "id": "longalpaca.0",
            "context": "Below is a paper.\nThe paper begins.\nAlpha beta. Now the paper ends.",
            "conversations": turns(("What is alpha?", "A letter.")),
            "context_sources": passages("Below is a paper.\nThe paper begins.\nAlpha beta. Now the paper ends."),
        },
        {
            "id": "longalpaca.1",
            "context": "Doc one. Now the story ends. More. Now the book ends.",
            "conversations": turns(("Summarize it.", "A summary.")),
            "context_sources": passages("Doc one. Now the story ends. More. Now the book ends."),
        },
    ]
    assert drops == {"record_no_marker": 1, "record_no_question": 1}


def test_pwc_jsonl(tmp_path):
    path = write_jsonl(
        tmp_path / "PwC_train.jsonl",
        [
            {"input": "Text one.", "prompt": "Give the title.", "answer": "One."},
            {"input": "Text one.", "prompt": "Explain every word of it in detail.", "answer": "Fine."},
            {"input": "Text two.", "prompt": "Count it.", "answer": "Two."},
        ],
    )
    records, drops = run("pwc", path, settings(pwc={"max_turn_tokens": 5}))
    assert records.to_dicts() == [
        {
            "id": "pwc.0",
            "context": "Text one.",
            "conversations": turns(("Give the title.", "One.")),
            "context_sources": passages("Text one."),
        },
        {
            "id": "pwc.1",
            "context": "Text two.",
            "conversations": turns(("Count it.", "Two.")),
            "context_sources": passages("Text two."),
        },
    ]
    assert drops == {"qa_pair_turn_over_limit": 1}


def test_coqa_distractors_are_seeded(tmp_path):
    path = write_parquet(
        tmp_path / "coqa.parquet",
        COQA,
        [
            coqa_row("Story zero.", ["Q0?"], ["A0"]),
            coqa_row("Story one.", ["Q1?"], ["A1"]),
            coqa_row("Story two.", ["Q2?"], ["A2"]),
        ],
    )
    records, _ = run("coqa", path, settings(coqa={"distractors": 2}), seed=0)
    # seed 0 draws 0, 1 and 0 distractors; story one's is story zero, shuffled in front of it
    assert records["context"].to_list() == ["Story zero.", "Story one.\n\nStory zero.", "Story two."]
    assert records["context_sources"].to_list() == [
        passages("Story zero."),
        passages("Story one.", "Story zero."),
        passages("Story two."),
    ]
    assert records["conversations"].to_list() == [turns(("Q0?", "A0")), turns(("Q1?", "A1")), turns(("Q2?", "A2"))]


def msmarco_fixture(tmp_path) -> Path:
    return write_parquet(
        tmp_path / "msmarco.parquet",
        MSMARCO,
        [
            msmarco_row("q0", ["a0"], ["unrelated x", "P-A"], [0, 1], 0),
            msmarco_row("q1", [], ["P-B"], [1], 1),  # no answer
            msmarco_row("q2", ["a2"], ["P-Z", "P-Y"], [0, 0], 2),  # no selected passage
            msmarco_row("q3", ["a3"], ["P-C"], [1], 3),
            msmarco_row("q4", ["No Answer Present."], ["P-A"], [1], 4),  # no answer
            msmarco_row("q5", ["a5", "other"], ["P-Q", "P-A", "P-C"], [0, 1, 1], 5),  # first selected: P-A
            msmarco_row("q6", ["a6"], ["P-D"], [1], 6),
            msmarco_row("q7", ["a7"], ["P-E"], [1], 7),
            msmarco_row("q8", ["a8"], ["P-F"], [1], 8),  # left over (5 passages, runs of 2)
        ],
    )


def test_msmarco_merges_selected_passages(tmp_path):
    config = settings(msmarco={"passages_per_record": 2, "distractors": 1})
    records, drops = run("msmarco", msmarco_fixture(tmp_path), config, seed=0)
    # passages with answered queries: P-A (q0, q5), P-C (q3), P-D, P-E, P-F; runs (A, C) and (D, E).
    # Seed 0: record 0 gets one distractor (P-D, another group's passage) and keeps its query groups in order;
    # record 1 gets none and swaps its two query groups.
    assert records.to_dicts() == [
        {
            "id": "msmarco.0",
            "context": "P-D\n\nP-A\n\nP-C",
            "conversations": turns(("q0", "a0"), ("q5", "a5"), ("q3", "a3")),
            "context_sources": passages("P-D", "P-A", "P-C"),
        },  # own passages and the distractor
        {
            "id": "msmarco.1",
            "context": "P-D\n\nP-E",
            "conversations": turns(("q7", "a7"), ("q6", "a6")),
            "context_sources": passages("P-D", "P-E"),
        },
    ]
    assert drops == {"passage_leftover": 1, "query_no_answer": 2, "query_no_selected_passage": 1}


def test_metaicl_demonstrations_and_queries(tmp_path):
    path = metaicl_file(tmp_path, "glue-sst2", [(f"x{i}", f"y{i}") for i in range(5)])
    config = settings(metaicl={"tasks": ["glue-sst2"], "max_demonstrations": 2, "max_queries": 1})
    records, drops = run("metaicl", [path], config, seed=0)
    # seed 0 orders the examples 4, 2, 3, 0, 1: demonstrations 4 and 2, question 3; then 0 and 1 find no question
    assert records.to_dicts() == [
        {
            "id": "metaicl.0.glue-sst2",
            "context": "Input: x4\nOutput: y4\n\nInput: x2\nOutput: y2",
            "conversations": turns(("Input: x3\nOutput:", "y3")),
            "context_sources": ["task:glue-sst2"],
        },
    ]
    assert drops == {"example_leftover": 2}


# ---------------------------------------------------------------- distractors, determinism, limits
def many_stories(tmp_path, count=14) -> Path:
    rows = [coqa_row(f"Story number {i} is here.", [f"Question {i}?"], [f"answer {i}"]) for i in range(count)]
    rows[9] = coqa_row(rows[3]["story"], ["Twin question?"], ["twin answer"])  # same text as story 3
    return write_parquet(tmp_path / "coqa.parquet", COQA, rows)


def test_distractors_never_include_the_own_context(tmp_path):
    path = many_stories(tmp_path)
    stories = pl.read_parquet(path)["story"].to_list()
    for seed in range(4):
        records, _ = run("coqa", path, seed=seed)
        distractor_count = 0
        for row, record in enumerate(records.iter_rows(named=True)):
            passages = record["context"].split("\n\n")
            assert passages.count(stories[row]) == 1, record  # own story once: never a distractor, not its twin
            assert len(set(passages)) == len(passages) and set(passages) <= set(stories)
            assert 0 <= len(passages) - 1 <= 8
            distractor_count += len(passages) - 1
        assert distractor_count > 0

    records, _ = run(
        "msmarco", msmarco_fixture(tmp_path), settings(msmarco={"passages_per_record": 2, "distractors": 32}), seed=1
    )
    own = {"msmarco.0": {"P-A", "P-C"}, "msmarco.1": {"P-D", "P-E"}}
    for record in records.iter_rows(named=True):
        passages = record["context"].split("\n\n")
        assert sorted(passages) == sorted(set(passages)) and own[record["id"]] <= set(passages)
        assert set(passages) <= {"P-A", "P-C", "P-D", "P-E", "P-F"}


def test_same_seed_same_records(tmp_path):
    path = many_stories(tmp_path)
    first, _ = run("coqa", path, seed=7)
    again, _ = run("coqa", path, seed=7)
    other, _ = run("coqa", path, seed=8)
    assert first.equals(again)
    assert not first.equals(other)
    assert first["id"].to_list() == other["id"].to_list()  # only the random choices differ


def test_token_limits_drop_and_count(tmp_path):
    path = write_parquet(
        tmp_path / "coqa.parquet",
        COQA,
        [
            coqa_row("Short story.", ["One two three?", "Four five?", "Six?"], ["a", "b", "c"]),
            coqa_row("A story far too long for the limit.", ["Q?"], ["A"]),
            coqa_row("Fits.", ["A question of seven words, truly long?"], ["yes"]),
        ],
    )
    config = settings(max_context_tokens=4, max_conversation_tokens=6, coqa={"distractors": 0})
    records, drops = run("coqa", path, config)
    # record 0 keeps the longest prefix of its session within 6 words: "One two three?" + "a" (4), "Four five?" +
    # "b" (3 more: 7 > 6) is cut, and so is everything after it
    assert records.to_dicts() == [
        {
            "id": "coqa.0",
            "context": "Short story.",
            "conversations": turns(("One two three?", "a")),
            "context_sources": passages("Short story."),
        }
    ]
    assert drops == {"qa_pair_over_budget": 2, "record_context_over_limit": 1, "record_conversation_over_limit": 1}
    # a dataset's own limits override the global ones
    overridden = settings(max_context_tokens=4, coqa={"distractors": 0, "max_context_tokens": 100})
    assert run("coqa", path, overridden)[0].height == 3


def test_booksum_limit_counts_the_whole_context(tmp_path):
    path = write_booksum(
        tmp_path / "train.csv",
        [
            {
                "book_id": "Emma.chapter 1",
                "summary_id": "chapter 1",
                "chapter": "one two three",
                "summary_text": "Short.",
            },
            {
                "book_id": "Emma.chapter 2",
                "summary_id": "chapter 2",
                "chapter": "one two three four",
                "summary_text": "Short too.",
            },
        ],
    )
    # "Emma, chapter 1:" is 3 words, so chapter 1's context has 6 and chapter 2's 7
    records, drops = run("booksum", path, settings(booksum={"max_context_tokens": 6}))
    assert records["id"].to_list() == ["booksum.0"] and drops == {"record_context_over_limit": 1}


def test_metaicl_fills_records_up_to_the_token_limits(tmp_path):
    examples = [(f"a{i} b{i}", f"c{i}") for i in range(10)] + [(" ".join(["long"] * 20), "z")]
    path = metaicl_file(tmp_path, "ag_news", examples)
    # a demonstration "Input: a b\nOutput: c" is 5 words and a question "Input: a b\nOutput:" + answer 5 as well:
    # two of each fit 12 context words and a 12-word budget; the 23-word example fits neither and is dropped
    config = settings(
        max_context_tokens=12, max_conversation_tokens=12, metaicl={"tasks": ["ag_news"], "max_groups": 200}
    )
    records, drops = run("metaicl", [path], config, seed=3)
    assert records.height == 2
    for record in records.iter_rows(named=True):
        assert len(record["context"].split("\n\n")) == 2 and len(record["conversations"]) == 4
        assert "long" not in record["context"] and record["id"].endswith(".ag_news")
    assert drops.get("example_over_context_limit", 0) + drops.get("example_over_conversation_budget", 0) == 1
    assert drops["example_leftover"] == 2
    capped = settings(metaicl={"tasks": ["ag_news"], "max_demonstrations": 1, "max_queries": 1, "max_groups": 3})
    assert run("metaicl", [path], capped)[0].height == 3


def test_max_records_caps_a_dataset(tmp_path):
    records, _ = run("coqa", many_stories(tmp_path), settings(coqa={"max_records": 2}))
    assert records["id"].to_list() == ["coqa.0", "coqa.1"]


def test_converters_take_resolved_limits(tmp_path):
    unresolved = SftSourcesConfig().coqa  # the block alone, without the global limits filled in
    with pytest.raises(ValueError, match="SftSourcesConfig.source"):
        SFT_SOURCES["coqa"].convert([], unresolved, count_words, random.Random(0))
    assert settings(max_conversation_tokens=9).source("coqa").max_conversation_tokens == 9


# ---------------------------------------------------------------- MetaICL: no test task ever enters training
def test_metaicl_split_is_the_published_one():
    assert len(HR_TO_LR_TRAIN_TASKS) == 61 == len(set(HR_TO_LR_TRAIN_TASKS))
    assert len(HR_TO_LR_TEST_TASKS) == 26 == len(set(HR_TO_LR_TEST_TASKS))
    assert not set(HR_TO_LR_TRAIN_TASKS) & set(HR_TO_LR_TEST_TASKS)
    assert SftSourcesConfig().metaicl.tasks == list(HR_TO_LR_TRAIN_TASKS)


def test_metaicl_test_task_fails_loudly(tmp_path):
    with pytest.raises(ConfigError, match="'glue-rte' is a MetaICL HR->LR test task"):
        settings(metaicl={"tasks": ["ag_news", "glue-rte"]})
    # a test task's file handed to the reader
    test_file = metaicl_file(tmp_path, "superglue-cb", [("premise", "entailment")])
    with pytest.raises(DataError, match="'superglue-cb' is an HR->LR test task") as err:
        list(SFT_SOURCES["metaicl"].read_native([test_file]))
    assert err.value.file == str(test_file)
    # a test task's rows inside a training task's file
    mixed = write_jsonl(
        tmp_path / "data" / "ag_news" / "ag_news_16384_100_train.jsonl",
        [
            {"task": "ag_news", "input": "x", "output": "y", "options": []},
            {"task": "ai2_arc", "input": "x", "output": "y", "options": []},
        ],
    )
    with pytest.raises(DataError, match="'ai2_arc'") as err:
        list(SFT_SOURCES["metaicl"].read_native([mixed]))
    assert (err.value.file, err.value.row, err.value.column) == (str(mixed), 1, "task")
    with pytest.raises(DataError, match="'quarel'"):
        ensure_training_task("quarel", "data/quarel/quarel_16384_100_train.jsonl")


def test_final_records_are_checked_for_test_tasks():
    records = pl.DataFrame({"id": ["coqa.0", "metaicl.0.glue-sst2", "metaicl.1.tweet_eval-hate"]})
    with pytest.raises(DataError, match="'tweet_eval-hate'") as err:
        check_no_test_tasks(records, "mixture/train.parquet")
    assert (err.value.row, err.value.column) == (2, "id")
    with pytest.raises(DataError, match="does not name its task"):
        check_no_test_tasks(pl.DataFrame({"id": ["metaicl.3"]}), "mixture/train.parquet")
    check_no_test_tasks(records.head(2), "mixture/train.parquet")


# ---------------------------------------------------------------- downloads: the real code around the hub call
SPLIT_FIXTURES = {
    "coqa": (COQA, [coqa_row("S.", ["Q?"], ["A"])]),
    "drop": (DROP, [drop_row("P.", "Q?", ["A"])]),
    "narrativeqa": (NARRATIVEQA, [narrativeqa_row("Sum.", "Q?", ["A"])]),
    "pubmedqa": (PUBMEDQA, [pubmedqa_row(1, "Q?", ["C."], "Because.", "no")]),
    "quail": (QUAIL, [quail_row("P.", "Q?", ["A", "B"], 0)]),
    "msmarco": (MSMARCO, [msmarco_row(f"q{i}", [f"a{i}"], [f"P{i}."], [1], i) for i in range(4)]),
}


@pytest.mark.parametrize("name", sorted(SPLIT_FIXTURES))
def test_download_saves_the_pinned_split(tmp_path, name):
    import datasets
    from datasets.table import InMemoryTable

    schema, rows = SPLIT_FIXTURES[name]
    table = pa.Table.from_pylist(rows, schema=schema)
    calls = []

    def hub_split(hub_id, config_name, revision, split):  # stands in for datasets.load_dataset on the hub
        calls.append((hub_id, config_name, revision, split))
        return datasets.Dataset(InMemoryTable(table))

    cfg = SftSourcesConfig().source(name)
    module = SFT_SOURCES[name]
    path = module.download(cfg, tmp_path / "cache", hub_split)
    assert calls == [(cfg.hub_id, cfg.config_name, cfg.revision, "train")]
    assert module.download(cfg, tmp_path / "cache", hub_split) == path and len(calls) == 1  # cached
    assert pq.read_schema(path).remove_metadata().equals(schema)  # the native layout, nested fields as published
    direct = write_parquet(tmp_path / "direct.parquet", schema, rows)
    assert run(name, path)[0].equals(run(name, direct)[0])


def test_pinned_sources():
    config = SftSourcesConfig()
    assert (config.msmarco.config_name, config.pubmedqa.config_name) == ("v1.1", "pqa_labeled")
    for name in ("narrativeqa", "msmarco", "booksum", "longalpaca", "pwc", "metaicl"):
        assert len(getattr(config, name).revision) == 40, name
    hub_ids = {name: getattr(config, name).hub_id for name in MIXTURE_SOURCES}
    assert hub_ids == {
        "coqa": "stanfordnlp/coqa",
        "drop": "ucinlp/drop",
        "narrativeqa": "deepmind/narrativeqa",
        "pubmedqa": "qiaojin/PubMedQA",
        "quail": "textmachinelab/quail",
        "msmarco": "microsoft/ms_marco",
        "booksum": "kmfoda/booksum",
        "longalpaca": "Yukang/LongAlpaca-12k",
        "metaicl": "allenai/metaicl-data",
    }


def test_file_downloads_fetch_the_pinned_files(tmp_path):
    hub = tmp_path / "hub"
    write_booksum(
        _mkdir(hub / "kmfoda/booksum") / "train.csv",
        [{"book_id": "Emma.chapter 1", "summary_id": "chapter 1", "chapter": "Text.", "summary_text": "Sum."}],
    )
    (_mkdir(hub / "Yukang/LongAlpaca-12k") / "LongAlpaca-12k.json").write_text(
        json.dumps([{"instruction": "Doc. Now the paper ends. Q?", "output": "A."}])
    )
    write_jsonl(hub / "sggetao/PwC" / "PwC_train.jsonl", [{"input": "T.", "prompt": "P?", "answer": "A."}])
    for task in ("glue-sst2", "ag_news"):
        metaicl_file(hub / "allenai/metaicl-data", task, [("x", "y")] * 3)
    calls = []

    def hub_file(hub_id, filename, revision, local_dir):  # stands in for huggingface_hub.hf_hub_download
        calls.append((hub_id, filename, revision))
        target = Path(local_dir) / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(hub / hub_id / filename, target)
        return target

    config = settings(metaicl={"tasks": ["glue-sst2", "ag_news"], "max_demonstrations": 1, "max_queries": 1})
    for name in ("booksum", "longalpaca", "pwc", "metaicl"):
        cfg, module = config.source(name), SFT_SOURCES[name]
        calls.clear()
        downloaded = module.download(cfg, tmp_path / "cache", hub_file)
        if name == "metaicl":
            assert calls == [
                (cfg.hub_id, f"data/{task}/{task}_16384_100_train.jsonl", cfg.revision)
                for task in ("glue-sst2", "ag_news")
            ]
        else:
            assert calls == [(cfg.hub_id, cfg.file, cfg.revision)]
        records, _ = run(name, downloaded, config)
        assert records.height >= 1, name


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


# ---------------------------------------------------------------- bad input: errors name file, row and field
def invalid_utf8_strings(values: list[bytes]) -> pa.Array:
    """A Parquet string column holding raw bytes (Arrow does not check them on write)."""
    offsets = np.cumsum([0] + [len(v) for v in values]).astype(np.int32)
    return pa.Array.from_buffers(
        pa.string(), len(values), [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(b"".join(values))]
    )


@pytest.mark.parametrize(
    "name, schema, rows, row, column, problem",
    [
        (
            "coqa",
            COQA,
            [coqa_row("S.", ["Q?"], ["A"]), coqa_row("S2.", ["Q1?", "Q2?"], ["A1"])],
            1,
            "answers.input_text",
            "1 answers for 2 questions",
        ),
        ("coqa", COQA, [coqa_row("S.", ["Q?"], ["A"]), coqa_row("  ", ["Q?"], ["A"])], 1, "story", "empty string"),
        (
            "drop",
            DROP,
            [drop_row("P.", "Q?", ["A"]), drop_row("P.", "Q2?", [])],
            1,
            "answers_spans.spans",
            "empty list",
        ),
        ("narrativeqa", NARRATIVEQA, [narrativeqa_row("S.", "Q?", [])], 0, "answers[0].text", "missing"),
        ("narrativeqa", NARRATIVEQA, [narrativeqa_row("S.", "", ["A"])], 0, "question.text", "empty string"),
        (
            "pubmedqa",
            PUBMEDQA,
            [pubmedqa_row(1, "Q?", ["C."], "L.", "perhaps")],
            0,
            "final_decision",
            "expected one of",
        ),
        ("quail", QUAIL, [quail_row("P.", "Q?", ["A", "B"], 2)], 0, "correct_answer_id", "not an index"),
        (
            "msmarco",
            MSMARCO,
            [msmarco_row("q", ["a"], ["P1", "P2"], [1])],
            0,
            "passages.is_selected",
            "1 flags for 2 passages",
        ),
    ],
)
def test_bad_native_rows_name_file_row_and_field(tmp_path, name, schema, rows, row, column, problem):
    path = write_parquet(tmp_path / f"{name}.parquet", schema, rows)
    with pytest.raises(DataError, match=problem) as err:
        run(name, path)
    assert (err.value.file, err.value.row, err.value.column) == (str(path), row, column)


def test_wrong_type_and_missing_column(tmp_path):
    wrong = QUAIL.set(QUAIL.get_field_index("correct_answer_id"), pa.field("correct_answer_id", pa.string()))
    path = write_parquet(
        tmp_path / "quail.parquet", wrong, [{**quail_row("P.", "Q?", ["A"], 0), "correct_answer_id": "0"}]
    )
    with pytest.raises(DataError, match="expected an integer, got str") as err:
        run("quail", path)
    assert (err.value.row, err.value.column) == (0, "correct_answer_id")

    no_questions = pa.schema([field for field in COQA if field.name != "questions"])
    path = write_parquet(
        tmp_path / "coqa.parquet",
        no_questions,
        [{"source": "s", "story": "S.", "answers": coqa_row("S.", [], [])["answers"]}],
    )
    with pytest.raises(DataError, match="missing column") as err:
        run("coqa", path)
    assert (err.value.file, err.value.column) == (str(path), "questions")

    booksum = write_booksum(
        tmp_path / "train.csv", [{"book_id": "B.c", "summary_id": "c", "chapter": "T.", "summary_text": ""}]
    )
    with pytest.raises(DataError, match="missing") as err:
        run("booksum", booksum)
    assert (err.value.row, err.value.column) == (0, "summary_text")

    array = tmp_path / "LongAlpaca-12k.json"
    array.write_text(json.dumps([{"instruction": "Doc. Now the paper ends. Q?", "output": 3}]))
    with pytest.raises(DataError, match="expected a string, got int") as err:
        run("longalpaca", array)
    assert (err.value.row, err.value.column) == (0, "output")


def test_invalid_utf8_names_row_and_field(tmp_path):
    jsonl = tmp_path / "PwC_train.jsonl"
    jsonl.write_bytes(
        b'{"input": "T.", "prompt": "P?", "answer": "A."}\n{"input": "T.", "prompt": "bad \xff byte", "answer": "A."}\n'
    )
    with pytest.raises(DataError, match="invalid UTF-8") as err:
        run("pwc", jsonl)
    assert (err.value.file, err.value.row, err.value.column) == (str(jsonl), 1, "prompt")

    booksum = write_booksum(
        tmp_path / "train.csv",
        [
            {"book_id": "B.c1", "summary_id": "c1", "chapter": "Fine.", "summary_text": "S."},
            {"book_id": "B.c2", "summary_id": "c2", "chapter": "Bad BYTE here,\nover lines.", "summary_text": "S."},
        ],
    )
    booksum.write_bytes(booksum.read_bytes().replace(b"BYTE", b"\xfe\xff"))
    with pytest.raises(DataError, match="invalid UTF-8") as err:
        run("booksum", booksum)
    assert (err.value.row, err.value.column) == (1, "chapter")

    array = tmp_path / "LongAlpaca-12k.json"
    array.write_bytes(
        b'[{"instruction": "Doc. Now the paper ends. Q?", "output": "fine"},'
        b' {"instruction": "Doc. Now the paper ends. Q?", "output": "bad \xc3"}]'
    )
    with pytest.raises(DataError, match="invalid UTF-8") as err:
        run("longalpaca", array)
    assert (err.value.row, err.value.column) == (1, "output")

    table = pa.table(
        {
            "section_id": ["s", "s"],
            "query_id": ["a", "b"],
            "passage": ["P.", "P."],
            "question": invalid_utf8_strings([b"Fine?", b"Bad \xff?"]),
            "answers_spans": pa.array([{"spans": ["x"], "types": ["span"]}] * 2, DROP.field("answers_spans").type),
        }
    )
    pq.write_table(table, tmp_path / "drop.parquet")
    with pytest.raises(DataError, match="invalid UTF-8") as err:
        run("drop", tmp_path / "drop.parquet")
    assert (err.value.row, err.value.column) == (1, "question")


# ---------------------------------------------------------------- the record contract
def record(identifier="coqa.1", context="C.", conversation=None, sources=("passage:c",)):
    return {
        "id": identifier,
        "context": context,
        "conversations": conversation if conversation is not None else turns(("Q?", "A.")),
        "context_sources": list(sources),
    }


@pytest.mark.parametrize(
    "bad, column, check",
    [
        (
            record(conversation=[{"role": "assistant", "content": "A."}, {"role": "user", "content": "Q?"}]),
            "conversations",
            "user_first_then_alternating",
        ),
        (
            record(conversation=turns(("Q?", "A.")) + [{"role": "user", "content": "Q2?"}]),
            "conversations",
            "ends_with_assistant",
        ),
        (
            record(conversation=[{"role": "user", "content": "Q?"}, {"role": "user", "content": "A."}]),
            "conversations",
            "user_first_then_alternating",
        ),
        (record(conversation=turns(("Q?", " "))), "conversations", "turn_contents_non_empty"),
        (record(conversation=[]), "conversations", "has_turns"),
        (record(context="  "), "context", "non_empty_string"),
        (record(identifier="coqa.0"), "id", "duplicate"),
        (record(identifier="coqa-zero"), "id", "str_matches"),
        (record(sources=()), "context_sources", "non_empty_distinct_kind_colon_id"),
        (record(sources=("passage:c", "passage:c")), "context_sources", "non_empty_distinct_kind_colon_id"),
        (record(sources=("no kind",)), "context_sources", "non_empty_distinct_kind_colon_id"),
        (record(sources=("passage: ",)), "context_sources", "non_empty_distinct_kind_colon_id"),
    ],
)
def test_record_contract(bad, column, check):
    frame = pl.DataFrame([record("coqa.0"), bad], schema=RECORD_SCHEMA)
    with pytest.raises(DataError, match=check) as err:
        validate_records(frame, "records.parquet")
    assert (err.value.file, err.value.row, err.value.column) == ("records.parquet", 1, column)


def test_provenance_of_every_source():
    config = SftSourcesConfig()
    entries = [SFT_SOURCES[name].provenance(config.source(name)) for name in SFT_SOURCES]
    frame = provenance_frame(entries)
    licences = dict(zip(frame["dataset"], frame["licence"]))
    assert licences["quail"] == "CC BY-NC-SA" and licences["longalpaca"] == "CC BY-NC"
    assert licences["metaicl"] == "CC BY-NC 4.0" and licences["drop"] == "CC BY-SA"
    metaicl = frame.filter(pl.col("dataset") == "metaicl").row(0, named=True)
    assert len(metaicl["files"]) == 61 and metaicl["files"][0] == "data/piqa/piqa_16384_100_train.jsonl"
