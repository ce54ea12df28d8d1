"""What a knowledge-QA evaluation asks: contexts made of a benchmark's passages, and the questions about them.

A benchmark source yields `Passage`s in its own order, each with the questions asked about it. `group_contexts`
concatenates unique passages in order into contexts of about k tokens; every question of a context's passages is
asked of that context (so every question lands in exactly one context per k).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Question:
    question_id: str
    question: str
    references: tuple[str, ...]
    """Every reference answer, in the source's order (the metrics take the max over them)."""


@dataclass(frozen=True)
class Passage:
    passage_id: str
    text: str
    questions: tuple[Question, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Context:
    context_id: str
    """`{benchmark}-{k}-{index}`: unique within a benchmark and length."""
    benchmark: str
    length: int
    """k: the target token length of the group this context belongs to."""
    text: str
    """The passages' texts joined by `PASSAGE_SEPARATOR`."""
    num_tokens: int
    """Tokens of `text` under the base model's tokenizer (context framing excluded)."""
    passage_ids: tuple[str, ...]
    questions: tuple[Question, ...]


PASSAGE_SEPARATOR = "\n\n"
