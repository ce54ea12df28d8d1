"""Grouping a benchmark's passages into contexts of k tokens, and the contexts file (ga/eval/knowledge/contexts.py).

Token counts are whitespace words (`count_words`) unless a test says otherwise; one test uses a real BPE tokenizer.
"""

from __future__ import annotations

import dataclasses

import polars as pl
import pytest

from ga.data.contracts import DataError
from ga.eval.contexts import PASSAGE_SEPARATOR, Context, Passage, Question
from ga.eval.knowledge.contexts import (
    contexts_frame,
    group_contexts,
    over_length,
    read_contexts,
    unique_passages,
    write_contexts,
)


def count_words(text: str) -> int:
    return len(text.split())


def passage(passage_id: str, words: int, questions: int = 1) -> Passage:
    text = " ".join(f"{passage_id}w{i}" for i in range(words))
    return Passage(
        passage_id,
        text,
        tuple(Question(f"{passage_id}-q{j}", f"What {j} of {passage_id}?", (f"answer {j}",)) for j in range(questions)),
    )


def question_ids(contexts: list[Context]) -> list[str]:
    return [q.question_id for context in contexts for q in context.questions]


def test_hand_worked_grouping():
    # sizes 3, 4, 2, 5, 1 words; the separator has no words, so a group's count is the sum of its passages'
    passages = [passage("a", 3), passage("b", 4, 2), passage("c", 2, 0), passage("d", 5), passage("e", 1)]
    contexts = group_contexts(passages, 7, count_words, "squad")
    assert [c.passage_ids for c in contexts] == [("a", "b"), ("c", "d"), ("e",)]
    assert [c.num_tokens for c in contexts] == [7, 7, 1]
    assert [c.context_id for c in contexts] == ["squad-7-00000", "squad-7-00001", "squad-7-00002"]
    assert contexts[0].text == passages[0].text + PASSAGE_SEPARATOR + passages[1].text
    assert question_ids(contexts) == ["a-q0", "b-q0", "b-q1", "d-q0", "e-q0"]
    assert {(c.benchmark, c.length) for c in contexts} == {("squad", 7)}
    assert over_length(contexts) == 0


@pytest.mark.parametrize("k", [1, 3, 5, 8, 13, 40, 1000])
def test_every_question_in_exactly_one_context_and_contexts_respect_k(k):
    passages = [passage(f"p{i}", 1 + (i * 7) % 11, i % 3) for i in range(40)]
    contexts = group_contexts(passages, k, count_words, "entities")
    all_ids = [q.question_id for p in passages for q in p.questions]
    assert question_ids(contexts) == all_ids  # each once, in source order
    assert [pid for c in contexts for pid in c.passage_ids] == [p.passage_id for p in passages]  # order kept
    for context in contexts:
        assert context.num_tokens == count_words(context.text)
        assert context.num_tokens <= k or len(context.passage_ids) == 1
    assert over_length(contexts) == sum(count_words(p.text) > k for p in passages)


def test_over_length_passage_is_a_context_of_its_own():
    passages = [passage("a", 2), passage("long", 12, 2), passage("b", 2), passage("c", 3)]
    contexts = group_contexts(passages, 5, count_words, "squad")
    assert [c.passage_ids for c in contexts] == [("a",), ("long",), ("b", "c")]
    assert contexts[1].num_tokens == 12 and contexts[1].text == passages[1].text  # kept whole
    assert [q.question_id for q in contexts[1].questions] == ["long-q0", "long-q1"]
    assert over_length(contexts) == 1


def test_duplicates_are_merged_first_occurrence_wins():
    first = Passage("x", "one two", (Question("q1", "Q1?", ("a",)),))
    again = Passage("x", "a different text", (Question("q1", "Q1?", ("a",)), Question("q2", "Q2?", ("b",))))
    other = Passage("y", "three", (Question("q3", "Q3?", ()),))
    unique = unique_passages([first, other, again])
    assert [(p.passage_id, p.text) for p in unique] == [("x", "one two"), ("y", "three")]
    assert [q.question_id for q in unique[0].questions] == ["q1", "q2"]
    contexts = group_contexts([first, other, again], 100, count_words, "squad")
    assert len(contexts) == 1 and contexts[0].text == "one two" + PASSAGE_SEPARATOR + "three"
    assert question_ids(contexts) == ["q1", "q2", "q3"]


def test_a_question_of_two_passages_is_an_error():
    with pytest.raises(ValueError, match="'q1' belongs to passages 'x' and 'y'"):
        unique_passages(
            [Passage("x", "a", (Question("q1", "?", ("r",)),)), Passage("y", "b", (Question("q1", "?", ("r",)),))]
        )


def test_one_id_for_two_questions_is_an_error():
    with pytest.raises(ValueError, match="'q1' names two different questions of passage 'x'"):
        unique_passages([Passage("x", "a", (Question("q1", "?", ("r",)), Question("q1", "?", ("s",))))])


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least 1"):
        group_contexts([passage("a", 1)], 0, count_words, "squad")
    with pytest.raises(ValueError, match="'a' has no text"):
        group_contexts([Passage("a", "  ")], 4, count_words, "squad")
    assert group_contexts([], 4, count_words, "squad") == []


def test_joined_count_above_the_estimate_moves_passages_on():
    """A tokenizer whose count of a joined text exceeds the sum of its parts (here each boundary costs 2 tokens in
    context but the separator alone counts 1): the exact recount keeps every context within k."""

    def count(text: str) -> int:
        return 1 if text == PASSAGE_SEPARATOR else count_words(text) + 2 * text.count(PASSAGE_SEPARATOR)

    passages = [passage(f"p{i}", 2) for i in range(6)]
    # estimate for 3 passages = 2+1+2+1+2 = 8 <= 8, but the exact count is 2*3 + 2*2 = 10 -> the third moves on
    contexts = group_contexts(passages, 8, count, "squad")
    assert [c.passage_ids for c in contexts] == [("p0", "p1"), ("p2", "p3"), ("p4", "p5")]
    assert all(c.num_tokens == count(c.text) == 6 for c in contexts)


def test_counts_each_passage_once_plus_one_count_per_context():
    calls = []

    def count(text: str) -> int:
        calls.append(text)
        return count_words(text)

    passages = [passage(f"p{i}", 3) for i in range(30)]
    contexts = group_contexts(passages, 10, count, "squad")
    assert len(contexts) == 10
    assert len(calls) == 30 + 1 + 10  # passages, separator, one exact count per (multi-passage) context


def test_with_a_real_tokenizer(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    passages = [
        Passage(
            f"p{i}",
            f"Passage {i} says that the {i}th river flows {'north' if i % 2 else 'south'}, past {i * 3} towns.\n",
            (Question(f"q{i}", f"Where does river {i} flow?", ("north" if i % 2 else "south",)),),
        )
        for i in range(25)
    ]
    for k in (16, 64, 200):
        contexts = group_contexts(passages, k, count, "entities")
        assert [q.question_id for c in contexts for q in c.questions] == [f"q{i}" for i in range(25)]
        for context in contexts:
            assert context.num_tokens == count(context.text)
            assert context.num_tokens <= k or len(context.passage_ids) == 1


# ---------------------------------------------------------------- the contexts file
def sample_contexts() -> list[Context]:
    passages = [
        passage("a", 3, 2),
        passage("b", 4, 0),
        passage("c", 9, 1),
        Passage("d", "Café «Paris» — l'été", (Question("d-q0", "Où ?", ()),)),
    ]
    return group_contexts(passages, 8, count_words, "streamingqa")


def test_round_trip(tmp_path):
    contexts = sample_contexts()
    path = write_contexts(contexts, tmp_path / "contexts" / "streamingqa-8.parquet")
    assert read_contexts(path) == contexts
    assert read_contexts(write_contexts([], tmp_path / "empty.parquet")) == []
    assert not [p for p in path.parent.iterdir() if p.name != path.name]  # no temporary leftovers


def _write_frame(frame: pl.DataFrame, path):
    frame.write_parquet(path)
    return path


@pytest.mark.parametrize(
    "change, column",
    [
        (lambda f: f.with_columns(pl.lit(0, pl.Int64).alias("num_tokens")), "num_tokens"),
        (lambda f: f.with_columns(pl.lit("   ").alias("text")), "text"),
        (lambda f: f.with_columns(pl.lit("squad-8-00000").alias("context_id")), "context_id"),
        (lambda f: f.with_columns(pl.lit(["a", "a"], pl.List(pl.Utf8)).alias("passage_ids")), "passage_ids"),
        (lambda f: f.drop("questions"), "questions"),
    ],
)
def test_read_names_the_file_and_column_of_a_defect(tmp_path, change, column):
    path = _write_frame(change(contexts_frame(sample_contexts())), tmp_path / "bad.parquet")
    with pytest.raises(DataError, match=f"bad.parquet.*{column}"):
        read_contexts(path)


def test_a_question_in_two_contexts_is_rejected_on_write_and_read(tmp_path):
    contexts = sample_contexts()
    asked_again = dataclasses.replace(contexts[1], questions=contexts[1].questions + contexts[0].questions[:1])
    bad = [contexts[0], asked_again, *contexts[2:]]
    with pytest.raises(DataError, match="each_question_in_one_context_per_length"):
        write_contexts(bad, tmp_path / "twice.parquet")
    assert not list(tmp_path.iterdir())  # nothing written
    path = _write_frame(contexts_frame(bad), tmp_path / "twice.parquet")
    with pytest.raises(DataError, match="twice.parquet.*each_question_in_one_context_per_length"):
        read_contexts(path)


def test_read_rejects_what_is_not_parquet(tmp_path):
    path = tmp_path / "contexts.parquet"
    path.write_text("not parquet")
    with pytest.raises(DataError, match="contexts.parquet.*not a readable Parquet file"):
        read_contexts(path)
