"""What every evaluation family asks: a `Context` (a knowledge-QA context, an ICL episode, a conversation) and the
`Question`s about it, and the `Passage`s a knowledge-QA benchmark yields (grouped into contexts by
`ga.eval.knowledge.contexts`).

Plain dataclasses, light on purpose: the family registries (read by the config sections) build on them.
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
