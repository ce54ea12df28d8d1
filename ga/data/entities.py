"""Seeded generator of fictional entities (people, organisations, places) with facts, and encyclopedic passages
about them.

Stable API (the knowledge-QA data of a later stage asks questions about the same entities):

    entities = generate_entities(count, seed)          # list[Entity]; entity i depends only on (seed, i) and
                                                         # the names of entities < i, so a larger count keeps
                                                         # the same first entities
    entity.facts                                        # tuple[Fact]: (subject, relation, value)
    fact.question, fact.answer                          # a question whose answer is the fact's value
    passages(entity, count, seed)                       # list[str]: varied encyclopedic passages; each states
                                                         # every fact of the entity
    entity_documents(entities, passages_per_entity, seed) -> list[dict]  # raw documents (doc_id, source, text,
                                                         # metadata) in the common raw-document schema
    split_key(doc_id) -> str                            # the key a validation hold-out should hash: the entity's id
                                                         # for a passage's doc_id, so an entity is held out whole

Names are made from syllables so they do not collide with real entities the base model may know; they are unique
within one generated list.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

ENTITY_KINDS = ("person", "organisation", "place")
SOURCE_NAME = "fictional_entities"

_ONSETS = (
    "b",
    "br",
    "d",
    "dr",
    "f",
    "g",
    "gr",
    "h",
    "k",
    "kl",
    "l",
    "m",
    "n",
    "p",
    "pr",
    "r",
    "s",
    "st",
    "t",
    "th",
    "v",
    "z",
    "qu",
    "sh",
    "w",
)
_NUCLEI = ("a", "e", "i", "o", "u", "ai", "ea", "io", "ou", "y")
_CODAS = ("", "n", "r", "l", "s", "th", "m", "nd", "rk", "x")

_OCCUPATIONS = (
    "astronomer",
    "cartographer",
    "composer",
    "glassblower",
    "botanist",
    "shipwright",
    "mathematician",
    "archivist",
    "bridge engineer",
    "poet",
    "violin maker",
    "geologist",
    "physician",
    "weaver",
    "architect",
    "linguist",
    "chemist",
    "beekeeper",
    "clockmaker",
    "painter",
)
_FIELDS = (
    "tidal clocks",
    "cloud atlases",
    "salt-resistant wheat",
    "folding bridges",
    "glass harmonicas",
    "river charts",
    "mountain lichens",
    "star catalogues",
    "ceramic pigments",
    "signal lanterns",
    "wind gauges",
    "silk looms",
    "mineral springs",
    "printing inks",
    "seed vaults",
)
_INDUSTRIES = (
    "shipbuilding",
    "textiles",
    "lantern making",
    "publishing",
    "glassware",
    "rail freight",
    "instrument making",
    "mining",
    "cartography",
    "brewing",
    "pharmaceuticals",
    "ceramics",
)
_ORG_FORMS = ("Company", "Guild", "Works", "Society", "Institute", "Cooperative", "Foundry", "Trading House")
_PLACE_FORMS = ("city", "town", "village", "port", "island", "valley")
_COLORS = ("amber", "cobalt", "crimson", "emerald", "ivory", "saffron", "slate", "violet", "ochre", "teal")
_PRODUCTS = (
    "blue cheese",
    "copper kettles",
    "paper lanterns",
    "wool blankets",
    "honey wine",
    "salt fish",
    "glass beads",
    "cedar boats",
    "fig jam",
    "stone carvings",
    "dried apricots",
    "linen",
)


@dataclass(frozen=True)
class Fact:
    """One fact about an entity: `value` answers `question`."""

    subject: str
    relation: str
    value: str

    @property
    def question(self) -> str:
        return RELATIONS[self.relation]["question"].format(s=self.subject)

    @property
    def answer(self) -> str:
        return self.value


@dataclass(frozen=True)
class Entity:
    entity_id: str
    kind: str
    name: str
    facts: tuple[Fact, ...]

    def fact(self, relation: str) -> Fact:
        return next(f for f in self.facts if f.relation == relation)

    def to_dict(self) -> dict:
        return {
            "entity_id": self.entity_id,
            "kind": self.kind,
            "name": self.name,
            "facts": [{"relation": f.relation, "value": f.value, "question": f.question} for f in self.facts],
        }


# relation -> question template and several sentence templates ({s}: subject, {v}: value)
RELATIONS: dict[str, dict] = {
    "birth_year": {
        "question": "In which year was {s} born?",
        "sentences": (
            "{s} was born in {v}.",
            "Born in {v}, {s} grew up far from any city.",
            "The records give {v} as the year of {s}'s birth.",
        ),
    },
    "birthplace": {
        "question": "Where was {s} born?",
        "sentences": (
            "{s} was born in {v}.",
            "{s}'s birthplace is {v}.",
            "{s} came into the world in the town of {v}.",
        ),
    },
    "occupation": {
        "question": "What was {s}'s occupation?",
        "sentences": ("{s} worked as a {v}.", "By profession {s} was a {v}.", "{s} is remembered as a {v}."),
    },
    "known_for": {
        "question": "What is {s} known for?",
        "sentences": (
            "{s} is best known for work on {v}.",
            "Much of {s}'s fame comes from {v}.",
            "Historians associate {s} with {v}.",
        ),
    },
    "employer": {
        "question": "Which organisation did {s} work for?",
        "sentences": (
            "For most of a career, {s} was employed by the {v}.",
            "{s} spent many years at the {v}.",
            "{s} joined the {v} as a young apprentice.",
        ),
    },
    "founded_year": {
        "question": "When was {s} founded?",
        "sentences": (
            "{s} was founded in {v}.",
            "The founding of {s} dates to {v}.",
            "Since its establishment in {v}, {s} has changed a great deal.",
        ),
    },
    "founder": {
        "question": "Who founded {s}?",
        "sentences": (
            "{s} was founded by {v}.",
            "{v} is credited as the founder of {s}.",
            "The founder of {s} was {v}.",
        ),
    },
    "headquarters": {
        "question": "Where is {s} headquartered?",
        "sentences": (
            "{s} has its headquarters in {v}.",
            "The main offices of {s} stand in {v}.",
            "{s} is based in {v}.",
        ),
    },
    "industry": {
        "question": "Which industry is {s} in?",
        "sentences": ("{s} operates in {v}.", "The business of {s} is {v}.", "{s} made its name in {v}."),
    },
    "emblem_color": {
        "question": "What is the colour of {s}'s emblem?",
        "sentences": (
            "The emblem of {s} is {v}.",
            "{s} flies a flag of {v}.",
            "{v} is the colour used in the emblem of {s}.",
        ),
    },
    "place_type": {
        "question": "What kind of place is {s}?",
        "sentences": ("{s} is a {v}.", "Travellers describe {s} as a small {v}.", "Geographers classify {s} as a {v}."),
    },
    "region": {
        "question": "In which region is {s}?",
        "sentences": ("{s} lies in the region of {v}.", "{s} is part of {v}.", "The region of {v} includes {s}."),
    },
    "population": {
        "question": "What is the population of {s}?",
        "sentences": (
            "{s} has a population of {v}.",
            "About {v} people live in {s}.",
            "The last census counted {v} inhabitants in {s}.",
        ),
    },
    "famous_product": {
        "question": "What is {s} famous for producing?",
        "sentences": (
            "{s} is famous for its {v}.",
            "Visitors to {s} often buy its {v}.",
            "The {v} of {s} are sold in many markets.",
        ),
    },
}

_INTROS = {
    "person": ("{s} was a {occupation}.", "{s} is a figure of the region's history.", "This article is about {s}."),
    "organisation": (
        "The {s} is an organisation.",
        "This article is about the {s}.",
        "The {s} is a long-standing institution.",
    ),
    "place": ("{s} is a settlement.", "This article is about {s}.", "{s} is a place known to few outsiders."),
}


def _word(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(_ONSETS) + rng.choice(_NUCLEI) + rng.choice(_CODAS) for _ in range(syllables))


def _proper(rng: random.Random) -> str:
    return _word(rng, rng.randint(2, 3)).capitalize()


def _name(kind: str, rng: random.Random) -> str:
    if kind == "person":
        return f"{_proper(rng)} {_proper(rng)}"
    if kind == "organisation":
        return f"{_proper(rng)} {rng.choice(_ORG_FORMS)}"
    return _proper(rng)


def _facts(kind: str, name: str, rng: random.Random) -> tuple[Fact, ...]:
    def fact(relation, value):
        return Fact(name, relation, str(value))

    if kind == "person":
        return (
            fact("birth_year", rng.randint(1650, 1990)),
            fact("birthplace", _proper(rng)),
            fact("occupation", rng.choice(_OCCUPATIONS)),
            fact("known_for", rng.choice(_FIELDS)),
            fact("employer", f"{_proper(rng)} {rng.choice(_ORG_FORMS)}"),
        )
    if kind == "organisation":
        return (
            fact("founded_year", rng.randint(1600, 2000)),
            fact("founder", f"{_proper(rng)} {_proper(rng)}"),
            fact("headquarters", _proper(rng)),
            fact("industry", rng.choice(_INDUSTRIES)),
            fact("emblem_color", rng.choice(_COLORS)),
        )
    return (
        fact("place_type", rng.choice(_PLACE_FORMS)),
        fact("region", _proper(rng)),
        fact("population", f"{rng.randint(2, 900) * 100:,}"),
        fact("founded_year", rng.randint(900, 1900)),
        fact("famous_product", rng.choice(_PRODUCTS)),
    )


def generate_entities(count: int, seed: int) -> list[Entity]:
    """`count` entities, kinds cycling person/organisation/place; entity i uses the RNG seeded by (seed, i)."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    entities, names = [], set()
    for index in range(count):
        rng = random.Random(f"ga.entities:{seed}:{index}")
        kind = ENTITY_KINDS[index % len(ENTITY_KINDS)]
        name = _name(kind, rng)
        while name in names:  # re-draw from the same stream; depends only on earlier names
            name = _name(kind, rng)
        names.add(name)
        entities.append(Entity(f"entity-{index:06d}", kind, name, _facts(kind, name, rng)))
    return entities


def passages(entity: Entity, count: int, seed: int) -> list[str]:
    """`count` encyclopedic passages about `entity`; each states every fact, with varied wording and order."""
    out = []
    for index in range(count):
        rng = random.Random(f"ga.passages:{seed}:{entity.entity_id}:{index}")
        facts = list(entity.facts)
        rng.shuffle(facts)
        intro = rng.choice(_INTROS[entity.kind]).format(
            s=entity.name, occupation=entity.fact("occupation").value if entity.kind == "person" else ""
        )
        sentences = [rng.choice(RELATIONS[f.relation]["sentences"]).format(s=entity.name, v=f.value) for f in facts]
        out.append(" ".join([intro, *sentences]))
    return out


def entity_documents(entities: list[Entity], passages_per_entity: int, seed: int) -> list[dict]:
    """Raw documents (common raw-document schema) with one passage each; metadata holds the entity id."""
    docs = []
    for entity in entities:
        for index, text in enumerate(passages(entity, passages_per_entity, seed)):
            docs.append(
                {
                    "doc_id": f"{SOURCE_NAME}/{entity.entity_id}/{index}",
                    "source": SOURCE_NAME,
                    "text": text,
                    "metadata": json.dumps({"entity_id": entity.entity_id, "kind": entity.kind}),
                }
            )
    return docs


def split_key(doc_id: str) -> str:
    """What the pretraining hold-out hashes for a document: the entity's id for a passage of a fictional entity
    (doc_id `fictional_entities/<entity_id>/<index>`), the doc_id itself for any other document.

    Holding out by entity keeps every passage of an evaluation entity out of training, so the knowledge-QA
    evaluation asks about facts the model never read (docs/method.md#embedded-default)."""
    source, _, rest = doc_id.partition("/")
    entity_id, _, index = rest.partition("/")
    if source == SOURCE_NAME and entity_id and index.isdigit():
        return entity_id
    return doc_id
