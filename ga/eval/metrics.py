"""Answer scoring for knowledge QA: SQuAD v1.1 F1 and exact match, and ROUGE-L recall.

`normalize_answer`, `f1_score` and `exact_match` follow the official SQuAD v1.1 evaluation script exactly:
lowercase; drop ASCII punctuation (`string.punctuation`: other punctuation such as "«" or "—" and accented letters
are kept); replace the words a/an/the by a space; collapse whitespace. F1 is over the normalized whitespace tokens
with multiset overlap, 0 when nothing overlaps (so also when either side is empty).

`score` scores one prediction against a question's references in two ways:
- `f1`, `em`: the max over all references (the standard SQuAD scoring);
- `f1_shortest`, `em_shortest`: against the single shortest reference (fewest characters, the first on a tie), the
  authors' variant, which their published numbers use;
and `rouge_l_recall`: the max over references of ROUGE-L recall (the longest common subsequence over the
reference's tokens) from the `rouge-score` package, whose tokenizer lowercases and keeps only [a-z0-9] runs, so text
with no ASCII letters or digits scores 0.

A prediction with no tokens after normalization (empty, blank, only punctuation or articles) scores 0 on every
metric: the official EM would call it equal to a reference that also normalizes to nothing.

In-context learning (MetaICL) scores `accuracy` instead (`accuracy_score`): 1 when the prediction equals a
reference after stripping surrounding whitespace and ignoring case (`str.casefold`), else 0; nothing else is
normalized (punctuation and inner spaces count), and an empty prediction is wrong.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

SCORE_KEYS = ("f1", "em", "f1_shortest", "em_shortest", "rouge_l_recall")
"""The keys of `score`'s result, in report order."""

ROUGE_USE_STEMMER = False
"""rouge-score's default (no Porter stemming): tokens must match as written, like SQuAD's F1."""

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """The official SQuAD v1.1 normalization: lowercase, drop ASCII punctuation, articles -> space, collapse
    whitespace (in this order, as the script does)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def f1_score(prediction: str, reference: str) -> float:
    """Token F1 of the normalized strings (multiset overlap); 0 when no token is shared."""
    prediction_tokens = normalize_answer(prediction).split()
    reference_tokens = normalize_answer(reference).split()
    same = sum((Counter(prediction_tokens) & Counter(reference_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(prediction_tokens), same / len(reference_tokens)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the normalized strings are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def rouge_l_recall(prediction: str, reference: str) -> float:
    """ROUGE-L recall: the longest common subsequence of tokens over the reference's token count."""
    from rouge_score import rouge_scorer  # a scorer costs about a microsecond to build

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=ROUGE_USE_STEMMER)
    return float(scorer.score(reference, prediction)["rougeL"].recall)


def shortest_reference(references: Sequence[str]) -> str:
    """The reference with the fewest characters (the first of equally short ones)."""
    return min(references, key=len)


def score(prediction: str, references: Sequence[str]) -> dict[str, float]:
    """Every metric of `SCORE_KEYS` for one prediction, each in [0, 1].

    Raises ValueError when `references` is empty: a question without references cannot be scored (the runner
    records it as an outcome instead)."""
    if isinstance(references, str):
        raise TypeError("references must be a sequence of strings, not one string")
    if not references:
        raise ValueError("a question without references cannot be scored")
    if not normalize_answer(prediction):
        return dict.fromkeys(SCORE_KEYS, 0.0)
    shortest = shortest_reference(references)
    return {
        "f1": max(f1_score(prediction, reference) for reference in references),
        "em": max(exact_match(prediction, reference) for reference in references),
        "f1_shortest": f1_score(prediction, shortest),
        "em_shortest": exact_match(prediction, shortest),
        "rouge_l_recall": max(rouge_l_recall(prediction, reference) for reference in references),
    }


ACCURACY_KEYS = ("accuracy",)
"""The keys of `accuracy_score`'s result."""


def normalize_label(text: str) -> str:
    """What case-insensitive exact match compares: the text stripped of surrounding whitespace, case-folded."""
    return text.strip().casefold()


def accuracy_score(prediction: str, references: Sequence[str]) -> dict[str, float]:
    """{"accuracy": 1.0 or 0.0}: case-insensitive exact match against any reference (an empty prediction is wrong).

    Raises ValueError when `references` is empty, like `score`."""
    if isinstance(references, str):
        raise TypeError("references must be a sequence of strings, not one string")
    if not references:
        raise ValueError("a question without references cannot be scored")
    answer = normalize_label(prediction)
    return {"accuracy": float(bool(answer) and any(answer == normalize_label(ref) for ref in references))}
