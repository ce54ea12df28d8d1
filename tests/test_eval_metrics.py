"""SQuAD v1.1 F1 / EM and ROUGE-L recall against hand-worked cases (ga/eval/metrics.py)."""

from __future__ import annotations

import pytest

from ga.eval.metrics import (
    SCORE_KEYS,
    exact_match,
    f1_score,
    normalize_answer,
    rouge_l_recall,
    score,
    shortest_reference,
)


@pytest.mark.parametrize(
    "text, normalized",
    [
        ("The Cat's  hat!", "cats hat"),  # lowercase, apostrophe dropped, article, spaces
        ("an apple a day", "apple day"),
        ("theater, another anthem", "theater another anthem"),  # articles only as whole words
        ("A.", ""),  # punctuation goes first, then the article
        ("  Denver\tBroncos\n", "denver broncos"),
        ("Café «Paris» — l'Été", "café «paris» — lété"),  # non-ASCII punctuation and accents kept, ASCII ' dropped
        ("Straße\u00a0Über", "straße über"),  # str.split splits on no-break space too
        ("1,000.5 km", "10005 km"),
        ("", ""),
    ],
)
def test_normalize_answer_is_the_official_one(text, normalized):
    assert normalize_answer(text) == normalized


def test_f1_hand_worked():
    # [cat, sat] vs [cat, sat, down]: precision 1, recall 2/3 -> F1 = 2 * 2/3 / (5/3) = 0.8
    assert f1_score("the cat sat", "a cat sat down") == pytest.approx(0.8)
    # multiset overlap: red x1, blue x1 -> 2 shared of 3 each -> 2/3
    assert f1_score("red red blue", "red blue blue") == pytest.approx(2 / 3)
    assert f1_score("Denver Broncos!", "denver broncos") == 1.0
    assert f1_score("Paris", "London") == 0.0
    assert f1_score("café", "cafe") == 0.0  # accents are not stripped
    assert f1_score("«Paris»", "Paris") == 0.0  # non-ASCII punctuation stays part of the token


@pytest.mark.parametrize("prediction, reference", [("", ""), ("", "Paris"), ("Paris", ""), ("the", "a")])
def test_f1_is_zero_without_overlap_including_empty(prediction, reference):
    assert f1_score(prediction, reference) == 0.0


def test_exact_match_official():
    assert exact_match("The Denver Broncos.", "denver   broncos") == 1.0
    assert exact_match("Denver", "Denver Broncos") == 0.0
    assert exact_match("", "") == 1.0  # the official script compares normalized strings; `score` guards empties


def test_rouge_l_recall():
    # reference [the, cat, sat, on, the, mat]; longest common subsequence "cat on the mat" = 4 of 6 tokens
    assert rouge_l_recall("cat on the mat", "the cat sat on the mat") == pytest.approx(4 / 6)
    assert rouge_l_recall("the cat sat on the mat", "cat on mat") == 1.0  # recall: extra predicted words are free
    assert rouge_l_recall("東京", "東京") == 0.0  # rouge-score keeps only [a-z0-9] runs


def test_score_takes_the_max_over_references_and_the_shortest_one_separately():
    references = ["Denver Broncos", "the Broncos", "Broncos"]
    result = score("Denver Broncos", references)
    assert list(result) == list(SCORE_KEYS)
    assert (result["f1"], result["em"], result["rouge_l_recall"]) == (1.0, 1.0, 1.0)
    # shortest = "Broncos": [denver, broncos] vs [broncos] -> precision 1/2, recall 1 -> 2/3; not equal
    assert result["f1_shortest"] == pytest.approx(2 / 3)
    assert result["em_shortest"] == 0.0


def test_score_max_can_come_from_a_later_reference():
    result = score("Santa Clara", ["Levi's Stadium", "Santa Clara, California", "Levi's Stadium in Santa Clara"])
    # vs "santa clara california": 2 shared, precision 1, recall 2/3 -> 0.8; vs the third: 2 of 6 -> 0.5
    assert result["f1"] == pytest.approx(0.8)
    assert result["em"] == 0.0
    assert result["f1_shortest"] == 0.0  # shortest = "Levi's Stadium"
    assert result["rouge_l_recall"] == pytest.approx(2 / 3)


def test_shortest_reference_first_on_tie():
    assert shortest_reference(["abc", "xyz", "abcd"]) == "abc"


@pytest.mark.parametrize("prediction", ["", "   ", "The.", "!!"])
def test_empty_prediction_scores_zero(prediction):
    assert score(prediction, ["the", "Paris"]) == dict.fromkeys(SCORE_KEYS, 0.0)


def test_no_references_is_an_error():
    with pytest.raises(ValueError, match="without references"):
        score("Paris", [])
    with pytest.raises(TypeError):
        score("Paris", "Paris")


def test_scores_are_fractions():
    for prediction in ("Paris", "Paris France", "the city of Paris in France", "Lyon"):
        for value in score(prediction, ["Paris", "Paris, France"]).values():
            assert 0.0 <= value <= 1.0
