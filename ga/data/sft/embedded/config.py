"""Settings of the embedded twin of the instruction-tuning data (docs/method.md#embedded-default): one block per
generated dataset, each an `SftSourceConfig` so that the per-dataset stage and `SftSourcesConfig.source(name)`
(which fills in the global token limits) treat it like a real source.

Set by the run, not by a config file (`internal`, yet part of `depends_on()` since the records change with them):
- `seed`: the run's top-level seed; `entity_qa` and the entity lookups of `synthetic_icl` must use the seed of the
  pretraining corpus (`pretrain_data.seed`, the same run seed) to generate the same entities;
- `val_fraction` (`entity_qa`, `synthetic_icl`): must equal `pretrain_data.val_fraction`, so that the evaluation
  entities are exactly the entities the pretraining data holds out (`ga.data.entities.split_key`).

`max_records` caps the train split only; the eval split's size follows from the generation settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from ga.data.config import EmbeddedSource, PretrainDataConfig
from ga.data.sft.config import HUB_ID_PATTERN, PASSAGE_SEPARATOR, SftSourceConfig
from ga.section import ConfigError, setting

GENERATED_OWNER = "ga-embedded"
"""Owner part of a generated dataset's `hub_id`: these datasets are generated locally, never fetched."""

PRETRAIN_ENTITIES = EmbeddedSource().entities
PRETRAIN_VAL_FRACTION = PretrainDataConfig().val_fraction
"""The pretraining corpus's defaults, as defaults here: the run sets `val_fraction`, and `entities` should be set to
the corpus's `pretrain_data.embedded.entities`."""


def _generated_hub_id(name: str):
    return setting(
        f"{GENERATED_OWNER}/{name}",
        "generated locally (no hub repository); names the dataset in provenance tables",
        pattern=HUB_ID_PATTERN,
        internal=True,
    )


def _no_revision():
    return setting(None, "generated datasets have no revision", internal=True)


def _run_seed():
    return setting(0, "the run's top-level seed (set by the run)", minimum=0, internal=True)


def _run_val_fraction():
    return setting(
        PRETRAIN_VAL_FRACTION,
        "pretrain_data.val_fraction (set by the run): the evaluation entities are "
        "the entities the pretraining data holds out",
        minimum=0,
        exclusive_maximum=1,
        internal=True,
    )


def _entities():
    return setting(
        PRETRAIN_ENTITIES,
        "generated fictional entities (ga.data.entities); set it to "
        "pretrain_data.embedded.entities so that the same entities are asked about",
        minimum=0,
    )


@dataclass
class EmbeddedSourceConfig(SftSourceConfig):
    """A generated dataset: its rows come from the run's seed instead of a download."""

    seed: int = _run_seed()

    def depends_on(self) -> dict:
        return {**super().depends_on(), "seed": self.seed}


@dataclass
class EntityQaConfig(EmbeddedSourceConfig):
    """Knowledge QA on the fictional entities of the pretraining corpus: an entity's passages (plus distractor
    entities' passages) as the context, questions about the entity's facts as the session; split by entity."""

    hub_id: str = _generated_hub_id("entity_qa")
    revision: str | None = _no_revision()
    val_fraction: float = _run_val_fraction()
    entities: int = _entities()
    passages_per_entity: int = setting(
        2,
        "passages of each entity in a context; the first n passages are the "
        "pretraining corpus's texts (identical) whenever n <= "
        "pretrain_data.embedded.passages_per_entity",
        minimum=1,
    )
    distractor_entities: int = setting(
        2,
        "a context also holds the passages of 0..n (uniform) other entities of "
        "the same split, shuffled with the entity's own; they are not asked "
        "about",
        minimum=0,
    )
    questions_per_record: int = setting(
        5,
        "questions about the entity's facts per record, at most (in a random order; each entity has 5 facts)",
        minimum=1,
    )
    records_per_entity: int = setting(
        1,
        "train records per train entity (each with its own distractors and "
        "question order); the eval split has one record per eval entity",
        minimum=1,
    )
    passage_separator: str = setting(PASSAGE_SEPARATOR, "between the passages of a context")

    def depends_on(self) -> dict:
        return {**super().depends_on(), "val_fraction": self.val_fraction}


ICL_FAMILIES = (
    "reverse_letters",
    "uppercase_nth_word",
    "first_letters",
    "last_letters",
    "caesar_shift",
    "repeat_word",
    "count_letter",
    "affix",
    "replace_letter",
    "nth_word",
    "sort_words",
    "modular_arithmetic",
    "linear_function",
    "list_reduce",
    "divisibility_label",
    "keyword_classification",
    "entity_lookup",
)
"""The synthetic in-context-learning task families (ga/data/sft/embedded/icl_families.py)."""

ICL_EVAL_FAMILIES = ("last_letters", "caesar_shift", "list_reduce", "keyword_classification")
"""Held-out families by default: each has a related training family (first_letters, replace_letter,
modular_arithmetic, divisibility_label), so the evaluation asks for a new task of a familiar kind."""


@dataclass
class SyntheticIclConfig(EmbeddedSourceConfig):
    """Synthetic in-context-learning tasks in MetaICL's record layout: demonstrations as the context, held-out
    examples as the questions; split by task family."""

    hub_id: str = _generated_hub_id("synthetic_icl")
    revision: str | None = _no_revision()
    val_fraction: float = _run_val_fraction()
    entities: int = _entities()
    families: list[str] = setting(list(ICL_FAMILIES), "task families to generate", min_items=2)
    eval_families: list[str] = setting(
        list(ICL_EVAL_FAMILIES),
        "families held out for evaluation: their tasks are never in a train record",
        min_items=1,
    )
    tasks_per_family: int = setting(8, "tasks (seeded parameterisations) per train family", minimum=1)
    eval_tasks_per_family: int = setting(4, "tasks per eval family", minimum=1)
    records_per_task: int = setting(3, "records per task (each with its own demonstrations and questions)", minimum=1)
    min_demonstrations: int = setting(1, "demonstrations per record, at least (uniform in min..max)", minimum=1)
    max_demonstrations: int = setting(16, "demonstrations per record, at most", minimum=1)
    queries_per_record: int = setting(
        4, "held-out examples asked per record (fewer when the QA budget is reached first)", minimum=1
    )
    demonstration_template: str = setting(
        "Input: {input}\nOutput: {output}", "one demonstration in the context (MetaICL's)"
    )
    question_template: str = setting(
        "Input: {input}\nOutput:", "one held-out example's question; its answer is the example's output"
    )
    demonstration_separator: str = setting(PASSAGE_SEPARATOR, "between demonstrations")

    def depends_on(self) -> dict:
        return {**super().depends_on(), "val_fraction": self.val_fraction}

    def check(self) -> None:
        unknown = sorted(set(self.families) - set(ICL_FAMILIES))
        if unknown:
            raise ConfigError(f"families: unknown {unknown}; known: {list(ICL_FAMILIES)}")
        outside = sorted(set(self.eval_families) - set(self.families))
        if outside:
            raise ConfigError(f"eval_families: {outside} not in families")
        if not set(self.families) - set(self.eval_families):
            raise ConfigError("eval_families: every family is held out; at least one must remain for training")
        for key in ("families", "eval_families"):
            names = getattr(self, key)
            if len(set(names)) < len(names):
                raise ConfigError(f"{key}: listed more than once: {sorted({n for n in names if names.count(n) > 1})}")
        if self.min_demonstrations > self.max_demonstrations:
            raise ConfigError(
                f"min_demonstrations: {self.min_demonstrations} is more than max_demonstrations "
                f"({self.max_demonstrations})"
            )


CHAT_ATTRIBUTES = (
    "pet",
    "hometown",
    "job",
    "hobby",
    "favourite_food",
    "favourite_colour",
    "sibling",
    "instrument",
    "new_city",
)
"""What a persona may tell about itself besides its name (templates in ga/data/sft/embedded/synthetic_chat.py)."""


@dataclass
class SyntheticChatConfig(EmbeddedSourceConfig):
    """Synthetic multi-session chats: a fictional persona states facts about itself in earlier sessions (the
    context) and asks about them later (the session); split by persona."""

    hub_id: str = _generated_hub_id("synthetic_chat")
    revision: str | None = _no_revision()
    personas: int = setting(300, "train personas (one record each)", minimum=1)
    eval_personas: int = setting(40, "eval personas (one record each); never in a train record", minimum=1)
    facts_per_persona: int = setting(
        5, "facts besides the name (which every persona states) per persona, drawn from CHAT_ATTRIBUTES", minimum=1
    )
    sessions: int = setting(3, "earlier sessions per persona; the facts are spread over them", minimum=1)
    small_talk_exchanges: int = setting(1, "user-assistant exchanges per session that state no fact", minimum=0)
    questions_per_record: int = setting(3, "questions about the persona's facts per record, at most", minimum=1)
    session_header: str = setting("Session {number}:", "first line of a session in the context ({number} from 1)")
    user_label: str = setting("User", "speaker label of the persona's turns in the context")
    assistant_label: str = setting("Assistant", "speaker label of the assistant's turns in the context")
    session_separator: str = setting(PASSAGE_SEPARATOR, "between sessions")

    def check(self) -> None:
        if self.facts_per_persona > len(CHAT_ATTRIBUTES):
            raise ConfigError(
                f"facts_per_persona: {self.facts_per_persona} is more than the {len(CHAT_ATTRIBUTES)} "
                f"attributes a persona can have ({', '.join(CHAT_ATTRIBUTES)})"
            )
