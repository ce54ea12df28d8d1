"""The embedded twin of the instruction-tuning data (docs/method.md#embedded-default): the record contract,
determinism, the three train/eval splits (by entity, consistent with the pretraining hold-out; by task family; by
persona), one hand-checked record per dataset, and the token-limit drops.

Token counts here are whitespace words (`count_words`): a deterministic stand-in for the base model's tokenizer.
"""

from __future__ import annotations

import dataclasses
import json
import re

import polars as pl
import pytest

from ga.data.contracts import DataError
from ga.data.embedded import fictional_entity_docs
from ga.data.entities import SOURCE_NAME, generate_entities, split_key
from ga.data.pretrain import is_validation
from ga.data.sft.build import seeded_rng
from ga.data.sft.embedded import entity_qa, icl_families, synthetic_chat, synthetic_icl
from ga.data.sft.embedded.common import EVAL, MENTIONS_HELD_OUT, SPLITS, TRAIN, in_memory_rows
from ga.data.sft.embedded.config import (
    CHAT_ATTRIBUTES,
    ICL_FAMILIES,
    EntityQaConfig,
    SyntheticChatConfig,
    SyntheticIclConfig,
)
from ga.data.sft.embedded.registry import EMBEDDED_SOURCES, generate_records
from ga.data.sft.records import RECORD_SCHEMA, provenance_frame, validate_records
from ga.section import ConfigError

LIMITS = {"max_context_tokens": 4096, "max_conversation_tokens": 512}
SEED = 3
VAL_FRACTION = 0.2
"""A larger hold-out than the default, so that the small test settings have enough eval entities."""


def count_words(text: str) -> int:
    return len(text.split())


def qa_config(**overrides) -> EntityQaConfig:
    settings = {"entities": 60, "seed": SEED, "val_fraction": VAL_FRACTION, **LIMITS}
    return EntityQaConfig(**{**settings, **overrides})


def icl_config(**overrides) -> SyntheticIclConfig:
    # 60 entities leave about 16 train entities of a kind: enough distinct lookups for 1 x (8 + 4) examples
    settings = {
        "entities": 60,
        "seed": SEED,
        "val_fraction": VAL_FRACTION,
        "tasks_per_family": 2,
        "eval_tasks_per_family": 2,
        "records_per_task": 1,
        "max_demonstrations": 8,
        **LIMITS,
    }
    return SyntheticIclConfig(**{**settings, **overrides})


def chat_config(**overrides) -> SyntheticChatConfig:
    settings = {"personas": 40, "eval_personas": 10, "seed": SEED, **LIMITS}
    return SyntheticChatConfig(**{**settings, **overrides})


CONFIGS = {"entity_qa": qa_config, "synthetic_icl": icl_config, "synthetic_chat": chat_config}


def records(name: str, cfg, split: str = TRAIN):
    return generate_records(name, cfg, count_words, split)


def record_texts(frame: pl.DataFrame) -> list[str]:
    return [
        row["context"] + "\n" + "\n".join(turn["content"] for turn in row["conversations"])
        for row in frame.iter_rows(named=True)
    ]


def mentioned(words, texts) -> set[str]:
    """Which of `words` occur as whole words in any of `texts`."""
    return {word for word in words if any(re.search(rf"\b{re.escape(word)}\b", text) for text in texts)}


# ---------------------------------------------------------------- API, contract, determinism
def test_registry_follows_the_converter_api():
    assert tuple(EMBEDDED_SOURCES) == ("entity_qa", "synthetic_icl", "synthetic_chat")
    for name, module in EMBEDDED_SOURCES.items():
        assert module.NAME == name
        for function in ("provenance", "download", "read_native", "convert", "native_rows"):
            assert callable(getattr(module, function))
    provenance_frame([module.provenance(CONFIGS[name]()) for name, module in EMBEDDED_SOURCES.items()])
    assert tuple(icl_families.FAMILY_BUILDERS) == ICL_FAMILIES
    assert tuple(synthetic_chat.ATTRIBUTES) == CHAT_ATTRIBUTES


@pytest.mark.parametrize("name", list(EMBEDDED_SOURCES))
def test_records_follow_the_contract_in_both_splits(name):
    cfg = CONFIGS[name]()
    for split in SPLITS:
        frame, drops = records(name, cfg, split)
        assert frame.schema == pl.Schema(RECORD_SCHEMA) and frame.height > 0 and drops == {}
        validate_records(frame, f"{name}/{split}", dataset=name)
        assert all(re.fullmatch(rf"{name}\.\d+(\.[A-Za-z0-9_\-]+)?", identifier) for identifier in frame["id"])


@pytest.mark.parametrize("name", list(EMBEDDED_SOURCES))
def test_same_seed_same_bytes_other_seed_other_records(name, tmp_path):
    module, cfg = EMBEDDED_SOURCES[name], CONFIGS[name]()
    first, second = module.download(cfg, tmp_path / "a"), module.download(cfg, tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    assert module.download(cfg, tmp_path / "a") == first  # reused while the settings are the same
    assert module.download(dataclasses.replace(cfg, seed=SEED + 1), tmp_path / "a") != first
    for split in SPLITS:
        from_file = module.convert(module.read_native(first), cfg, count_words, seeded_rng(SEED, name), split)
        in_memory = records(name, cfg, split)
        assert from_file[0].equals(in_memory[0]) and from_file[1] == in_memory[1]
    other = records(name, dataclasses.replace(cfg, seed=SEED + 1))[0]
    assert not other.equals(records(name, cfg)[0])


def test_max_records_caps_the_train_split_only():
    full = {split: records("synthetic_chat", chat_config(), split)[0] for split in SPLITS}
    capped = {split: records("synthetic_chat", chat_config(max_records=5), split)[0] for split in SPLITS}
    assert capped[TRAIN].equals(full[TRAIN].head(5))
    assert capped[EVAL].equals(full[EVAL])


# ---------------------------------------------------------------- entity_qa: split by entity, as pretraining holds out
def _entity_splits(cfg):
    return {row["entity_id"]: row for row in entity_qa.generate_rows(cfg)}


def test_entity_qa_uses_the_pretraining_corpus_passages():
    cfg = qa_config()
    corpus = {
        doc["doc_id"]: doc["text"] for doc in fictional_entity_docs(cfg.entities, cfg.passages_per_entity, cfg.seed)
    }
    generated = {
        doc_id: text for row in entity_qa.generate_rows(cfg) for doc_id, text in zip(row["doc_ids"], row["passages"])
    }
    assert generated == corpus


def test_split_key_keys_entity_passages_on_the_entity():
    assert split_key(f"{SOURCE_NAME}/entity-000042/1") == "entity-000042"
    for other in (
        "python_docs/topic/if",
        f"{SOURCE_NAME}/entity-000042",
        "slimpajama/train/000000000001",
        f"{SOURCE_NAME}/entity-000042/x",
    ):
        assert split_key(other) == other


def test_eval_entities_are_held_out_whole_from_pretraining():
    """With the pretraining hold-out keyed on split_key(doc_id), every passage of every eval entity is in the
    validation set and every passage of a train entity in the train set; keyed on the doc_id alone it would not be."""
    cfg = qa_config(passages_per_entity=3)
    splits = {entity_id: row["split"] for entity_id, row in _entity_splits(cfg).items()}
    assert 0 < list(splits.values()).count(EVAL) < len(splits)
    per_document_would_leak = False
    for doc in fictional_entity_docs(cfg.entities, cfg.passages_per_entity, cfg.seed):
        entity_id = json.loads(doc["metadata"])["entity_id"]
        held_out = is_validation(cfg.seed, split_key(doc["doc_id"]), cfg.val_fraction)
        assert held_out == (splits[entity_id] == EVAL), doc["doc_id"]
        per_document_would_leak |= splits[entity_id] == EVAL and not is_validation(
            cfg.seed, doc["doc_id"], cfg.val_fraction
        )
    assert per_document_would_leak


def test_no_eval_entity_in_any_train_record():
    cfg = qa_config()
    rows = _entity_splits(cfg)
    train_text = record_texts(records("entity_qa", cfg, TRAIN)[0])
    eval_frame = records("entity_qa", cfg, EVAL)[0]
    eval_rows = [row for row in rows.values() if row["split"] == EVAL]
    assert not mentioned([row["name"] for row in eval_rows], train_text)
    # fact values shared with train entities (years, occupations, ...) say nothing about an eval entity; every
    # other value of an eval fact must be absent from training
    train_material = " ".join(json.dumps(row) for row in rows.values() if row["split"] == TRAIN)
    distinctive = {
        fact["answer"]
        for row in eval_rows
        for fact in row["facts"]
        if not mentioned([fact["answer"]], [train_material])
    }
    assert len(distinctive) >= len(eval_rows)
    assert not mentioned(distinctive, train_text)
    # the eval split asks about every eval entity, and only about them
    asked = {turn["content"] for turns in eval_frame["conversations"] for turn in turns if turn["role"] == "user"}
    eval_questions = {fact["question"] for row in eval_rows for fact in row["facts"]}
    assert asked <= eval_questions and eval_frame.height == len(eval_rows)


def test_train_candidate_naming_an_eval_entity_is_dropped_and_counted():
    cfg = qa_config(entities=6, distractor_entities=0)
    rows = list(entity_qa.generate_rows(cfg))
    eval_name = next(row["name"] for row in rows if row["split"] == EVAL)
    train_index = next(i for i, row in enumerate(rows) if row["split"] == TRAIN)
    rows[train_index]["passages"][0] += f" It traded with {eval_name}."
    frame, drops = entity_qa.convert(in_memory_rows("entity_qa", rows), cfg, count_words, seeded_rng(SEED, "x"))
    assert drops == {MENTIONS_HELD_OUT: 1}
    assert "entity_qa.0" not in frame["id"].to_list()  # the dropped candidate keeps its number


def test_entity_qa_record_by_hand():
    """Entities 0, 2, 3 are train entities for seed 0 and the default hold-out; entity 1 (Quorkbond Cooperative) is
    held out, so it is never a distractor of a train record."""
    cfg = EntityQaConfig(entities=4, passages_per_entity=1, distractor_entities=1, questions_per_record=2, **LIMITS)
    assert [row["split"] for row in entity_qa.generate_rows(cfg)] == [TRAIN, EVAL, TRAIN, TRAIN]
    frame, drops = records("entity_qa", cfg)
    assert frame.height == 3 and drops == {}
    assert frame.row(0, named=True) == {
        "id": "entity_qa.0",
        "context": "Klearnork Waxdrourkpyl was a linguist. The records give 1690 as the year of Klearnork "
        "Waxdrourkpyl's birth. Historians associate Klearnork Waxdrourkpyl with mineral springs. "
        "Klearnork Waxdrourkpyl's birthplace is Draisnair. For most of a career, Klearnork Waxdrourkpyl "
        "was employed by the Diortyrk Works. By profession Klearnork Waxdrourkpyl was a linguist."
        "\n\n"
        "This article is about Wispyr. Wispyr lies in the region of Nysle. Visitors to Wispyr often buy "
        "its blue cheese. Geographers classify Wispyr as a village. Wispyr was founded in 1366. Wispyr "
        "has a population of 76,200.",
        "conversations": [
            {"role": "user", "content": "In which year was Klearnork Waxdrourkpyl born?"},
            {"role": "assistant", "content": "1690"},
            {"role": "user", "content": "What was Klearnork Waxdrourkpyl's occupation?"},
            {"role": "assistant", "content": "linguist"},
        ],
        "context_sources": ["entity:entity-000000", "entity:entity-000002"],  # the asked entity and Wispyr
    }


# ---------------------------------------------------------------- synthetic_icl: split by task family
def test_icl_eval_families_never_in_train_records():
    cfg = icl_config()
    train, evaluation = records("synthetic_icl", cfg, TRAIN)[0], records("synthetic_icl", cfg, EVAL)[0]
    family_of = {
        split: {synthetic_icl.task_family(i.split(".", 2)[2]) for i in frame["id"]}
        for split, frame in ((TRAIN, train), (EVAL, evaluation))
    }
    assert family_of[EVAL] == set(cfg.eval_families)
    assert family_of[TRAIN] == set(cfg.families) - set(cfg.eval_families)
    synthetic_icl.check_no_eval_families(train, cfg.eval_families, "train")
    with pytest.raises(DataError, match="held-out family"):
        synthetic_icl.check_no_eval_families(evaluation, cfg.eval_families, "eval")
    # no eval-family example (input and output) is in a train record
    train_text = "\n".join(record_texts(train))
    eval_examples = [row for row in synthetic_icl.generate_rows(cfg) if row["split"] == EVAL]
    assert not [row for row in eval_examples if f"Input: {row['input']}\nOutput: {row['output']}" in train_text]


def test_icl_entity_lookups_ask_only_about_train_entities():
    cfg = icl_config(families=["entity_lookup", "first_letters"], eval_families=["first_letters"], tasks_per_family=6)
    entities = generate_entities(cfg.entities, cfg.seed)
    held_out = entity_qa.eval_entity_ids(entities, cfg.seed, cfg.val_fraction)
    assert held_out
    asked = {row["input"] for row in synthetic_icl.generate_rows(cfg) if row["family"] == "entity_lookup"}
    assert asked and asked <= {entity.name for entity in entities if entity.entity_id not in held_out}


def test_icl_task_short_of_distinct_inputs_counts_its_leftover_examples():
    cfg = icl_config(
        entities=12,
        families=["entity_lookup", "first_letters"],
        eval_families=["first_letters"],
        tasks_per_family=1,
        records_per_task=3,
    )
    available = sum(row["task"] == "entity_lookup-0" for row in synthetic_icl.generate_rows(cfg))
    frame, drops = records("synthetic_icl", cfg)
    used = sum(row["context"].count("Input: ") + len(row["conversations"]) // 2 for row in frame.iter_rows(named=True))
    assert available < synthetic_icl.examples_per_task(cfg)
    assert drops == {"example_leftover": available - used}


def test_icl_every_family_makes_distinct_inputs_within_a_task():
    for row_task, inputs in _inputs_by_task(icl_config()).items():
        assert len(inputs) == len(set(inputs)), row_task


def _inputs_by_task(cfg):
    by_task: dict[str, list[str]] = {}
    for row in synthetic_icl.generate_rows(cfg):
        by_task.setdefault(row["task"], []).append(row["input"])
    return by_task


def test_icl_record_by_hand():
    cfg = SyntheticIclConfig(
        families=["first_letters", "repeat_word"],
        eval_families=["repeat_word"],
        tasks_per_family=1,
        eval_tasks_per_family=1,
        records_per_task=1,
        min_demonstrations=2,
        max_demonstrations=2,
        queries_per_record=1,
        **LIMITS,
    )
    assert records("synthetic_icl", cfg)[0].to_dicts() == [
        {
            "id": "synthetic_icl.0.first_letters-0",
            "context": "Input: denihox\nOutput: den\n\nInput: dutraisai\nOutput: dut",
            "conversations": [
                {"role": "user", "content": "Input: zileil\nOutput:"},
                {"role": "assistant", "content": "zil"},
            ],
            "context_sources": ["icl_family:first_letters"],
        }
    ]
    assert records("synthetic_icl", cfg, EVAL)[0].to_dicts() == [
        {
            "id": "synthetic_icl.0.repeat_word-0",
            "context": "Input: sishukon\nOutput: sishukon-sishukon\n\nInput: tothil\nOutput: tothil-tothil",
            "conversations": [
                {"role": "user", "content": "Input: doutaihir\nOutput:"},
                {"role": "assistant", "content": "doutaihir-doutaihir"},
            ],
            "context_sources": ["icl_family:repeat_word"],
        }
    ]


# ---------------------------------------------------------------- synthetic_chat: split by persona
def test_no_eval_persona_in_any_train_record():
    cfg = chat_config()
    rows = list(synthetic_chat.generate_rows(cfg))
    invented = {word for row in rows if row["split"] == EVAL for fact in row["facts"] for word in fact["invented"]}
    assert len(invented) > cfg.eval_personas
    assert not mentioned(invented, record_texts(records("synthetic_chat", cfg, TRAIN)[0]))
    assert mentioned(invented, record_texts(records("synthetic_chat", cfg, EVAL)[0])) == invented
    # the eval split does not depend on how many train personas there are
    fewer = records("synthetic_chat", dataclasses.replace(cfg, personas=3), EVAL)[0]
    assert fewer.equals(records("synthetic_chat", cfg, EVAL)[0])


def test_chat_record_by_hand():
    cfg = SyntheticChatConfig(
        personas=1,
        eval_personas=1,
        facts_per_persona=1,
        sessions=1,
        small_talk_exchanges=1,
        questions_per_record=2,
        **LIMITS,
    )
    assert records("synthetic_chat", cfg)[0].to_dicts() == [
        {
            "id": "synthetic_chat.0",
            "context": "Session 1:\n"
            "User: Hello again!\n"
            "Assistant: Hello! How have you been?\n"
            "User: By the way, my name is Luthonas.\n"
            "Assistant: Oh, nice! I'll remember that.\n"
            "User: In my free time I love sailing.\n"
            "Assistant: That's lovely to hear.\n"
            "User: The weather has been strange this week.\n"
            "Assistant: Sounds like quite a week!",
            "conversations": [
                {"role": "user", "content": "What is my hobby?"},
                {"role": "assistant", "content": "Your hobby is sailing."},
                {"role": "user", "content": "What is my name?"},
                {"role": "assistant", "content": "Your name is Luthonas."},
            ],
            "context_sources": ["persona:train-0"],
        }
    ]


# ---------------------------------------------------------------- token limits
def test_token_limits_drop_and_count():
    cfg = chat_config(questions_per_record=3)
    full = records("synthetic_chat", cfg)[0]
    context_words = [count_words(context) for context in full["context"]]
    pair_words = [[count_words(turn["content"]) for turn in turns] for turns in full["conversations"]]
    context_limit = sorted(context_words)[len(context_words) // 2]
    first_pairs = [words[0] + words[1] for words in pair_words]
    budget = max(first_pairs)  # every first pair fits; later pairs are cut where the sum exceeds it

    frame, drops = records(
        "synthetic_chat", dataclasses.replace(cfg, max_context_tokens=context_limit, max_conversation_tokens=budget)
    )
    over = sum(words > context_limit for words in context_words)
    kept = [i for i, words in enumerate(context_words) if words <= context_limit]
    cut = 0
    for i in kept:
        pairs = [pair_words[i][j] + pair_words[i][j + 1] for j in range(0, len(pair_words[i]), 2)]
        totals = [sum(pairs[: k + 1]) for k in range(len(pairs))]
        cut += sum(total > budget for total in totals)
    assert over > 0 and cut > 0
    assert drops == {"record_context_over_limit": over, "qa_pair_over_budget": cut}
    assert frame["id"].to_list() == [f"synthetic_chat.{i}" for i in kept]

    _, drops = records("synthetic_chat", dataclasses.replace(cfg, max_conversation_tokens=min(first_pairs) - 1))
    assert drops == {"record_conversation_over_limit": full.height}


def test_limits_must_be_resolved():
    with pytest.raises(ValueError, match="token limits not resolved"):
        generate_records("synthetic_chat", SyntheticChatConfig(personas=1, eval_personas=1), count_words)


# ---------------------------------------------------------------- settings and bad input
def test_settings_checks_and_what_records_depend_on():
    with pytest.raises(ConfigError, match="families: unknown"):
        SyntheticIclConfig(families=["reverse_letters", "telepathy"], eval_families=["reverse_letters"])
    with pytest.raises(ConfigError, match="eval_families: .* not in families"):
        SyntheticIclConfig(families=["reverse_letters", "affix"], eval_families=["nth_word"])
    with pytest.raises(ConfigError, match="every family is held out"):
        SyntheticIclConfig(families=["reverse_letters", "affix"], eval_families=["reverse_letters", "affix"])
    with pytest.raises(ConfigError, match="min_demonstrations"):
        SyntheticIclConfig(min_demonstrations=5, max_demonstrations=2)
    with pytest.raises(ConfigError, match="facts_per_persona"):
        SyntheticChatConfig(facts_per_persona=len(CHAT_ATTRIBUTES) + 1)
    depends = EntityQaConfig(seed=7, val_fraction=0.25).depends_on()
    assert depends["seed"] == 7 and depends["val_fraction"] == 0.25 and "hub_id" not in depends
    assert {"seed", "val_fraction", "hub_id", "revision"}.isdisjoint(EntityQaConfig.json_schema()["properties"])


def test_bad_native_rows_name_row_and_field():
    cfg = chat_config(personas=2, eval_personas=1)
    rows = list(synthetic_chat.generate_rows(cfg))
    rows[1]["split"] = "test"
    with pytest.raises(DataError, match=r"row 1, column 'split'.*'test' is not one of"):
        synthetic_chat.convert(in_memory_rows("synthetic_chat", rows), cfg, count_words, seeded_rng(0, "x"))
    rows = list(synthetic_chat.generate_rows(cfg))
    rows[0]["facts"][1]["answer"] = " "
    with pytest.raises(DataError, match=r"row 0, column 'facts\[1\].answer': empty string"):
        synthetic_chat.convert(in_memory_rows("synthetic_chat", rows), cfg, count_words, seeded_rng(0, "x"))
    with pytest.raises(ValueError, match="split must be one of"):
        records("synthetic_chat", cfg, "validation")


# ---------------------------------------------------------------- context sources
def test_context_sources_say_what_each_context_is_made_of():
    cfg = icl_config()
    names = {f"entity:{entity.entity_id}": entity.name for entity in generate_entities(cfg.entities, cfg.seed)}
    frame, _ = records("synthetic_icl", cfg)
    lookups = 0
    for record in frame.iter_rows(named=True):
        family = synthetic_icl.task_family(record["id"].split(".", 2)[2])
        entities = [source for source in record["context_sources"] if source.startswith("entity:")]
        assert set(record["context_sources"]) == {f"icl_family:{family}", *entities}, record["id"]
        assert all(re.search(rf"\b{re.escape(names[source])}\b", record["context"]) for source in entities)
        lookups += family == "entity_lookup"
        assert bool(entities) == (family == "entity_lookup"), record["id"]
    assert lookups > 0
    chat, _ = records("synthetic_chat", chat_config())
    assert chat["context_sources"].to_list() == [[f"persona:train-{i}"] for i in range(chat.height)]
    qa_cfg = qa_config()
    qa, _ = records("entity_qa", qa_cfg, EVAL)
    for record in qa.iter_rows(named=True):  # the asked entity is a source; the others are distractors
        asked = record["conversations"][0]["content"]
        assert any(names[source] in asked for source in record["context_sources"]), record["id"]
        assert all(names[source] in record["context"] for source in record["context_sources"]), record["id"]
