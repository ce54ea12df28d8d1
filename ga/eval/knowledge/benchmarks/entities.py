"""The embedded twin of the knowledge-QA benchmarks: the held-out fictional entities of `sft_sources.entity_qa`.

Generated from the run's settings (no download): `ga.data.sft.embedded.entity_qa.native_rows(cfg)`, one row per
entity with its `split`. Passages: one per EVAL entity, in generated order, its passages (the pretraining corpus's
documents about it) joined by `PASSAGE_SEPARATOR`, passage id = the entity id; its facts are the questions
(question id `{entity_id}-{relation}`, the one reference = the fact's answer). `qa_pairs`: the facts of the TRAIN
entities, for the QA fine-tuning baseline, so that no evaluated entity is trained on (the split is the pretraining
data's, so no eval entity's document is in the pretraining train split either).
"""

from __future__ import annotations

from collections.abc import Iterator

from ga.data.native import NativeRow, items, text, texts
from ga.data.sft.embedded.common import EVAL, TRAIN, split_of
from ga.data.sft.embedded.config import EntityQaConfig
from ga.data.sft.embedded.entity_qa import native_rows
from ga.eval.contexts import PASSAGE_SEPARATOR, Passage, Question

NAME = "entities"


def _rows(cfg: EntityQaConfig, split: str) -> Iterator[NativeRow]:
    return (row for row in native_rows(cfg) if split_of(row) == split)


def _facts(row: NativeRow) -> Iterator[tuple[str, str, str]]:
    """(relation, question, answer) of each fact of an entity row."""
    for index in range(len(items(row, "facts"))):
        yield (
            text(row, f"facts[{index}].relation"),
            text(row, f"facts[{index}].question"),
            text(row, f"facts[{index}].answer"),
        )


def passages(cfg: EntityQaConfig) -> list[Passage]:
    """One passage per held-out entity, in generated order, with its facts as questions."""
    out = []
    for row in _rows(cfg, EVAL):
        entity_id = text(row, "entity_id")
        questions = tuple(
            Question(f"{entity_id}-{relation}", question, (answer,)) for relation, question, answer in _facts(row)
        )
        out.append(Passage(entity_id, PASSAGE_SEPARATOR.join(texts(row, "passages")), questions))
    return out


def qa_pairs(cfg: EntityQaConfig) -> list[tuple[str, str]]:
    """(question, answer) of every fact of the training entities, in generated order."""
    return [(question, answer) for row in _rows(cfg, TRAIN) for _, question, answer in _facts(row)]
