"""The knowledge-QA benchmark sources, offline (ga/eval/knowledge/benchmarks/): SQuAD from a fixture in its native Parquet
layout (the hub call stood in for, as in tests/test_sft_sources.py), StreamingQA from fixture CSVs in CaMeLS's
layout (well-formed and malformed), and the embedded twin generated from its settings.
"""

from __future__ import annotations

import csv
import dataclasses

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ga.data.contracts import DataError
from ga.data.sft.embedded.config import EntityQaConfig
from ga.data.sft.embedded.entity_qa import native_rows
from ga.eval.contexts import PASSAGE_SEPARATOR, Passage, Question
from ga.eval.knowledge.benchmarks import (
    BenchmarkSources,
    benchmark_passages,
    benchmark_provenance,
    benchmark_qa_pairs,
    entities,
    squad,
    streamingqa,
)
from ga.eval.knowledge.config import KnowledgeEvalConfig
from ga.eval.knowledge.contexts import group_contexts
from ga.section import ConfigError


def count_words(text: str) -> int:
    return len(text.split())


# ---------------------------------------------------------------- SQuAD: native layout as published
SQUAD = pa.schema(
    [
        ("id", pa.string()),
        ("title", pa.string()),
        ("context", pa.string()),
        ("question", pa.string()),
        ("answers", pa.struct([("text", pa.list_(pa.string())), ("answer_start", pa.list_(pa.int32()))])),
    ]
)
BROWNIAN = "Brownian motion is the random motion of particles suspended in a fluid."
BEYONCE_1 = "Beyoncé Giselle Knowles-Carter is an American singer."
BEYONCE_2 = "She rose to fame in the late 1990s as lead singer of Destiny's Child."


def squad_row(qid, title, context, question, answers):
    return {
        "id": qid,
        "title": title,
        "context": context,
        "question": question,
        "answers": {"text": answers, "answer_start": [context.find(a) for a in answers]},
    }


SQUAD_ROWS = [
    squad_row(
        "5733be284776f41900661182",
        "Beyoncé",
        BEYONCE_1,
        "What is Beyoncé's nationality?",
        ["American", "American", "an American"],
    ),
    squad_row("5733be284776f41900661183", "Beyoncé", BEYONCE_1, "What is her surname?", ["Knowles-Carter"]),
    squad_row(
        "5733be284776f41900661184",
        "Beyoncé",
        BEYONCE_2,
        "When did she rise to fame?",
        ["late 1990s", "in the late 1990s"],
    ),
    squad_row("56de3f4ccffd8e1900b4b5c1", "Brownian_motion", BROWNIAN, "What is suspended in a fluid?", ["particles"]),
    squad_row("5733be284776f41900661185", "Beyoncé", BEYONCE_1, "Who is an American singer?", ["Beyoncé", " "]),
    squad_row("56de3f4ccffd8e1900b4b5c2", "Brownian_motion", BROWNIAN, "Is the motion ordered?", []),
]


def write_squad(path, rows=SQUAD_ROWS):
    pq.write_table(pa.Table.from_pylist(rows, schema=SQUAD), path)
    return path


def test_squad_passages(tmp_path):
    passages = squad.passages(write_squad(tmp_path / "validation.parquet"))
    assert [(p.passage_id, p.text) for p in passages] == [
        ("Beyoncé-0", BEYONCE_1),
        ("Beyoncé-1", BEYONCE_2),
        ("Brownian_motion-0", BROWNIAN),
    ]
    assert passages[0].questions == (
        Question("5733be284776f41900661182", "What is Beyoncé's nationality?", ("American", "American", "an American")),
        Question("5733be284776f41900661183", "What is her surname?", ("Knowles-Carter",)),
        Question("5733be284776f41900661185", "Who is an American singer?", ("Beyoncé",)),  # a repeat joins the first
    )
    assert passages[2].questions[1] == Question("56de3f4ccffd8e1900b4b5c2", "Is the motion ordered?", ())  # kept
    assert sum(len(p.questions) for p in passages) == len(SQUAD_ROWS)


def test_squad_qa_pairs(tmp_path):
    pairs = squad.qa_pairs(write_squad(tmp_path / "train.parquet"))
    assert pairs == [
        ("What is Beyoncé's nationality?", "American"),
        ("What is her surname?", "Knowles-Carter"),
        ("When did she rise to fame?", "late 1990s"),
        ("What is suspended in a fluid?", "particles"),
        ("Who is an American singer?", "Beyoncé"),
    ]  # the question without answers teaches nothing


def test_squad_bad_rows_name_file_row_and_field(tmp_path):
    rows = [*SQUAD_ROWS[:2], squad_row("x", "T", "  ", "Q?", ["a"])]
    with pytest.raises(DataError, match=r"bad.parquet: row 2, column 'context'"):
        squad.passages(write_squad(tmp_path / "bad.parquet", rows))
    pq.write_table(pa.table({"id": ["x"], "context": ["c"]}), tmp_path / "columns.parquet")
    with pytest.raises(DataError, match="columns.parquet.*missing column"):
        squad.passages(tmp_path / "columns.parquet")


def fake_hub(tables: dict[str, pa.Table], calls: list):
    import datasets
    from datasets.table import InMemoryTable

    def hub_split(hub_id, config_name, revision, split):  # stands in for datasets.load_dataset on the hub
        calls.append((hub_id, config_name, revision, split))
        return datasets.Dataset(InMemoryTable(tables[split]))

    return hub_split


def test_squad_download_saves_the_native_split(tmp_path):
    table = pa.Table.from_pylist(SQUAD_ROWS, schema=SQUAD)
    calls = []
    hub_split = fake_hub({"validation": table, "train": table.slice(0, 2)}, calls)
    cfg = KnowledgeEvalConfig().squad
    path = squad.download(cfg, tmp_path / "cache", hub_split)
    assert calls == [("rajpurkar/squad", "plain_text", None, "validation")]
    assert squad.download(cfg, tmp_path / "cache", hub_split) == path and len(calls) == 1  # cached
    assert pq.read_schema(path).remove_metadata().equals(SQUAD)
    assert squad.passages(path) == squad.passages(write_squad(tmp_path / "direct.parquet"))
    train = squad.download(cfg, tmp_path / "cache", hub_split, split="train")
    assert train != path and calls[-1][-1] == "train"
    assert len(squad.qa_pairs(train)) == 2


# ---------------------------------------------------------------- StreamingQA: CaMeLS's CSV layout
ARTICLE_1 = "LONDON (Reuters) - The Bank of England raised rates to 0.5% on Thursday, its first rise in a decade."
ARTICLE_2 = "Scientists in Chile announced on Monday the discovery of a comet, named C/2019 Q4."


def write_csv(path, rows, columns=("question", "answers", "text")):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)
    return path


STREAMINGQA_ROWS = [
    # extra columns as a prepared file may carry (ignored)
    ("2019-11-07", "What did the Bank of England raise rates to?", "0.5%\\half a percent\\ 0.5 per cent ", ARTICLE_1),
    ("2019-09-09", "Where was the comet discovered?", "Chile", ARTICLE_2),
    ("2019-11-07", "What agent code?", "007", ARTICLE_1),
    ("2019-11-07", "Which bank?", "\\ \\", ARTICLE_1),  # every answer blank: kept without references
    ("2019-09-09", "What was the comet named?", "", ARTICLE_2),  # empty cell: the same
]


def test_streamingqa_passages(tmp_path):
    path = write_csv(tmp_path / "test.csv", STREAMINGQA_ROWS, ("question_ts", "question", "answers", "text"))
    passages = streamingqa.passages(path)
    assert [(p.passage_id, p.text) for p in passages] == [("article-0", ARTICLE_1), ("article-1", ARTICLE_2)]
    assert passages[0].questions == (
        Question("row-0", "What did the Bank of England raise rates to?", ("0.5%", "half a percent", "0.5 per cent")),
        Question("row-2", "What agent code?", ("007",)),
        Question("row-3", "Which bank?", ()),
    )
    assert passages[1].questions == (
        Question("row-1", "Where was the comet discovered?", ("Chile",)),
        Question("row-4", "What was the comet named?", ()),
    )
    assert streamingqa.qa_pairs(path) == [
        ("What did the Bank of England raise rates to?", "0.5%"),
        ("Where was the comet discovered?", "Chile"),
        ("What agent code?", "007"),
    ]


def test_streamingqa_ids_from_the_qa_id_column(tmp_path):
    rows = [("q-17", "Where?", "Chile", ARTICLE_2), ("q-3", "Named?", "C/2019 Q4", ARTICLE_2)]
    path = write_csv(tmp_path / "ids.csv", rows, ("qa_id", "question", "answers", "text"))
    assert [q.question_id for q in streamingqa.passages(path)[0].questions] == ["q-17", "q-3"]
    path = write_csv(tmp_path / "repeat.csv", [rows[0], rows[0]], ("qa_id", "question", "answers", "text"))
    with pytest.raises(DataError, match=r"repeat.csv: row 1, column 'qa_id': repeated question id 'q-17'"):
        streamingqa.passages(path)


@pytest.mark.parametrize(
    "content, match",
    [
        (b"question,text\nWhere?,Some article.\n", r"missing.csv: column 'answers': missing column"),
        (b"", r"missing.csv: .*not a readable CSV file"),
        (b"question,answers,text\n", r"missing.csv: .*no rows"),
        (b'question,answers,text\n,Chile,"An article."\n', r"missing.csv: row 0, column 'question': missing"),
        (b'question,answers,text\nWhere?,Chile,"An article."\nWhen?,1990,\n', r"missing.csv: row 1, column 'text'"),
        (
            b'question,answers,text\nWhere?,Chile,"An \xff article."\n',
            r"missing.csv: row 0, column 'text': invalid UTF-8",
        ),
        (
            b'question,answers,text\nWhere?,Chile,"unclosed\n',
            r"missing.csv: .*not a readable CSV file: could not parse",
        ),
        (b"question,answers,text\nWhere?,Chile,An article.,extra\n", r"missing.csv: .*not a readable CSV file"),
    ],
)
def test_streamingqa_malformed_files_name_file_row_and_column(tmp_path, content, match):
    path = tmp_path / "missing.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=match) as err:
        streamingqa.passages(path)
    assert "\n" not in str(err.value)  # one line


def test_streamingqa_absent_file(tmp_path):
    with pytest.raises(DataError, match="nowhere.csv.*no such file"):
        streamingqa.passages(tmp_path / "nowhere.csv")


# ---------------------------------------------------------------- the embedded twin
ENTITY_QA = EntityQaConfig(entities=40)


def test_entities_are_the_held_out_ones_with_their_facts():
    rows = [row.data for row in native_rows(ENTITY_QA)]
    held_out = [row for row in rows if row["split"] == "eval"]
    train = [row for row in rows if row["split"] == "train"]
    passages = entities.passages(ENTITY_QA)
    assert held_out and train
    assert [p.passage_id for p in passages] == [row["entity_id"] for row in held_out]  # generated order
    assert passages[0].text == PASSAGE_SEPARATOR.join(held_out[0]["passages"])
    assert passages[0].questions == tuple(
        Question(f"{held_out[0]['entity_id']}-{fact['relation']}", fact["question"], (fact["answer"],))
        for fact in held_out[0]["facts"]
    )
    pairs = entities.qa_pairs(ENTITY_QA)
    assert len(pairs) == sum(len(row["facts"]) for row in train)
    asked = {q.question for p in passages for q in p.questions}
    assert asked and not asked & {question for question, _ in pairs}
    held_out_names = {row["name"] for row in held_out}
    assert not any(name in question for question, _ in pairs for name in held_out_names)


# ---------------------------------------------------------------- the registry
def sources(tmp_path, **streamingqa_paths) -> BenchmarkSources:
    calls = []
    table = pa.Table.from_pylist(SQUAD_ROWS, schema=SQUAD)
    config = KnowledgeEvalConfig.from_dict({"streamingqa": streamingqa_paths})
    return dataclasses.replace(
        BenchmarkSources.from_config(config, ENTITY_QA, tmp_path / "cache"),
        load_split=fake_hub({"validation": table, "train": table}, calls),
    )


def test_registry_gives_every_benchmark_and_each_question_lands_once(tmp_path):
    csv_path = write_csv(tmp_path / "test.csv", [row[1:] for row in STREAMINGQA_ROWS])
    source = sources(tmp_path, test_csv=str(csv_path), train_csv=str(csv_path))
    for name in ("squad", "streamingqa", "entities"):
        passages = benchmark_passages(name, source)
        assert passages and all(isinstance(p, Passage) for p in passages)
        assert benchmark_qa_pairs(name, source)
        expected = [q.question_id for p in passages for q in p.questions]
        for k in (8, 64, 4096):
            contexts = group_contexts(passages, k, count_words, name)
            assert [q.question_id for c in contexts for q in c.questions] == expected
    assert benchmark_provenance("squad", source)["hub_id"] == "rajpurkar/squad"
    assert len(benchmark_provenance("streamingqa", source)["sha256"]) == 64
    assert benchmark_provenance("entities", source)["settings"]["entities"] == 40


def test_registry_errors(tmp_path):
    source = sources(tmp_path)
    with pytest.raises(ConfigError, match="streamingqa.test_csv: required"):
        benchmark_passages("streamingqa", source)
    with pytest.raises(ConfigError, match="streamingqa.train_csv: required"):
        benchmark_qa_pairs("streamingqa", source)
    with pytest.raises(ValueError, match="unknown benchmark 'nq'"):
        benchmark_passages("nq", source)
