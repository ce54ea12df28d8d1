"""`entity_qa`: knowledge QA about the fictional entities of the pretraining corpus (docs/method.md#embedded-default).

Native row (one per entity, generated from the run's seed): `entity_id`, `kind`, `name`, `split`, `doc_ids[]` and
`passages[]` (exactly the pretraining corpus's documents about the entity: `ga.data.entities.entity_documents`),
`facts[]` of `relation`, `question`, `answer`.

Split by entity, the same way as the pretraining data: an entity is an eval entity when
`ga.data.pretrain.held_out_document(seed, doc_id, val_fraction)` holds for its passages' doc_ids
(`split_key` gives the entity's id, so all passages of an entity fall on the same side). With the pretraining data
holding out `split_key(doc_id)`, no eval entity's passage is in the pretraining train split, and no eval entity's
facts are in a train record: a record's distractors come from its own split, and a train candidate that names an
eval entity anyway (a generated fact value that happens to equal an eval entity's name) is dropped
(`record_mentions_eval_item`).

Record: the entity's passages plus those of 0..`distractor_entities` other entities of the same split, shuffled
passage by passage and joined by blank lines (as CoQA adds distractor stories); the session asks up to
`questions_per_record` of the entity's facts (`fact.question` -> `fact.answer`) in a random order; distractor
entities are not asked about, so the answer must come from the right passages. The record's context sources are
`entity:<entity_id>` of the asked entity and of every distractor. Train: `records_per_entity` rounds
over the train entities; eval: one record per eval entity.
Random calls per record: distractor count, distractor draw, passage shuffle, question shuffle.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ga.data.entities import Entity, entity_documents, generate_entities, split_key
from ga.data.native import NativeRow, items, text, texts
from ga.data.pretrain import held_out_document
from ga.data.sft.build import CountTokens, QAPair, RecordBuilder, sample_distractors
from ga.data.sft.embedded import common
from ga.data.sft.embedded.common import EVAL, TRAIN, check_split, split_of
from ga.data.sft.embedded.config import EntityQaConfig
from ga.data.sft.records import SourceProvenance

NAME = "entity_qa"
LICENCE = common.LICENCE


def provenance(cfg: EntityQaConfig, split: str = TRAIN) -> SourceProvenance:
    return common.provenance(NAME, cfg, split)


def entity_source(entity_id: str) -> str:
    """The `context_sources` entry of an entity's passages (ga/data/sft/records.py)."""
    return f"entity:{entity_id}"


def eval_entity_ids(entities: Iterable[Entity], seed: int, val_fraction: float) -> set[str]:
    """The entities the pretraining data holds out when it hashes `split_key(doc_id)`: decided on the doc_id of an
    entity's passage, exactly as the pretraining data decides."""
    held_out = set()
    for entity in entities:
        doc_id = entity_documents([entity], 1, seed)[0]["doc_id"]
        if held_out_document(seed, doc_id, val_fraction):
            held_out.add(entity.entity_id)
    return held_out


def generate_rows(cfg: EntityQaConfig) -> Iterator[dict]:
    entities = generate_entities(cfg.entities, cfg.seed)
    documents: dict[str, list[dict]] = {}
    for document in entity_documents(entities, cfg.passages_per_entity, cfg.seed):
        documents.setdefault(split_key(document["doc_id"]), []).append(document)
    held_out = eval_entity_ids(entities, cfg.seed, cfg.val_fraction)
    for entity in entities:
        own = documents[entity.entity_id]
        yield {
            "entity_id": entity.entity_id,
            "kind": entity.kind,
            "name": entity.name,
            "split": EVAL if entity.entity_id in held_out else TRAIN,
            "doc_ids": [d["doc_id"] for d in own],
            "passages": [d["text"] for d in own],
            "facts": [{"relation": f.relation, "question": f.question, "answer": f.answer} for f in entity.facts],
        }


def download(cfg: EntityQaConfig, cache_dir: str | Path) -> Path:
    """Generates the native rows (no network) and writes them once under `cache_dir`."""
    return common.write_native(NAME, cfg, cache_dir, lambda: generate_rows(cfg))


def native_rows(cfg: EntityQaConfig) -> Iterator[NativeRow]:
    """What `read_native(download(cfg, ...))` yields, without a file."""
    return common.in_memory_rows(NAME, generate_rows(cfg))


read_native = common.read_native


@dataclass(frozen=True)
class _Entity:
    entity_id: str
    name: str
    passages: list[str]
    pairs: list[QAPair]


def _entity(row: NativeRow) -> _Entity:
    facts = items(row, "facts")
    pairs = [QAPair(text(row, f"facts[{i}].question"), text(row, f"facts[{i}].answer")) for i in range(len(facts))]
    return _Entity(text(row, "entity_id"), text(row, "name"), texts(row, "passages"), pairs)


def convert(
    rows: Iterable[NativeRow], cfg: EntityQaConfig, count_tokens: CountTokens, rng: random.Random, split: str = TRAIN
) -> tuple[pl.DataFrame, dict[str, int]]:
    """The records of one split ("train": the training records; "eval": the evaluation records)."""
    check_split(split)
    chosen, held_out_names = [], []
    for row in rows:
        row_split = split_of(row)
        if row_split == split:
            chosen.append(_entity(row))
        elif row_split == EVAL:
            held_out_names.append(text(row, "name"))
    builder = RecordBuilder(NAME, cfg if split == TRAIN else dataclasses.replace(cfg, max_records=None), count_tokens)
    held_out = common.words_pattern(held_out_names) if split == TRAIN else None
    rounds = cfg.records_per_entity if split == TRAIN else 1
    for _ in range(rounds):
        for index, entity in enumerate(chosen):
            if builder.full:
                return builder.result()
            distractors = sample_distractors(rng, len(chosen), [index], cfg.distractor_entities)
            passages = entity.passages + [p for j in distractors for p in chosen[j].passages]
            rng.shuffle(passages)
            pairs = list(entity.pairs)
            rng.shuffle(pairs)
            sources = [entity_source(chosen[j].entity_id) for j in [index, *distractors]]
            common.add_unless_mentions(
                builder, held_out, cfg.passage_separator.join(passages), pairs[: cfg.questions_per_record], sources
            )
    return builder.result()
