"""`synthetic_chat`: synthetic multi-session chats, the embedded stand-in for Multi-Session Chat
(docs/method.md#embedded-default).

Native row (one per persona, generated from the run's seed): `persona_id` (`<split>-<index>`), `split`, `name`,
`facts[]` of `attribute`, `fields` (the drawn values), `statement`, `question`, `answer`, `invented[]` (the
made-up names among the fields),
and `sessions[]`, each a list of turns `{"speaker": "user"|"assistant", "text"}`. The persona is fictional: its
name, its pet's and sibling's names and its towns are made-up words; its job, hobby, food, ... come from the word
lists below.

A persona states its name and `facts_per_persona` other facts, each once, in a user turn of one of the `sessions`
earlier sessions (spread round-robin in a random order), among `small_talk_exchanges` exchanges per session that
state nothing; the assistant acknowledges. The record's context is the sessions with speaker labels
("Session 1:\\nUser: ...\\nAssistant: ..."), joined by blank lines; the record's session asks up to
`questions_per_record` of the facts ("What is my pet's name?" -> "Your cat is called Miso."); its context source is
`persona:<persona_id>`.

Split by persona: eval personas are generated first (so the eval split does not change with the number of train
personas), and a train persona redraws any made-up word an eval persona uses, so no eval persona's name or
invented value appears in a train record.
Random calls per record: one shuffle of the facts.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ga.data.contracts import DataError
from ga.data.native import NativeRow, items, text
from ga.data.sft.build import CountTokens, QAPair, RecordBuilder
from ga.data.sft.embedded import common
from ga.data.sft.embedded.common import EVAL, TRAIN, check_split, generation_rng, made_up_word, split_of
from ga.data.sft.embedded.config import CHAT_ATTRIBUTES, SyntheticChatConfig
from ga.data.sft.records import ASSISTANT, USER, SourceProvenance
from ga.format import SessionLayout, Turn

NAME = "synthetic_chat"
LICENCE = common.LICENCE
NAME_SYLLABLES = (2, 3)
"""Syllables of a made-up name (people, pets, towns)."""

PET_KINDS = ("dog", "cat", "parrot", "tortoise", "rabbit", "goldfish", "ferret", "hamster")
JOBS = (
    "nurse",
    "carpenter",
    "baker",
    "teacher",
    "electrician",
    "librarian",
    "plumber",
    "architect",
    "pharmacist",
    "bus driver",
    "gardener",
    "accountant",
    "chef",
    "firefighter",
    "translator",
    "veterinarian",
)
HOBBIES = (
    "rock climbing",
    "knitting",
    "birdwatching",
    "chess",
    "pottery",
    "sailing",
    "gardening",
    "photography",
    "baking bread",
    "running marathons",
    "painting",
    "fishing",
    "playing board games",
    "woodworking",
)
FOODS = (
    "lasagna",
    "mushroom soup",
    "grilled fish",
    "lentil curry",
    "apple pie",
    "dumplings",
    "tacos",
    "risotto",
    "pancakes",
    "roast chicken",
    "falafel",
    "ramen",
)
COLOURS = ("green", "purple", "orange", "blue", "yellow", "red", "turquoise", "maroon")
SIBLINGS = ("sister", "brother")
INSTRUMENTS = ("piano", "violin", "guitar", "cello", "flute", "drums", "trumpet", "harp", "accordion")


@dataclass(frozen=True)
class Attribute:
    """How a persona tells one attribute and how it is asked about; templates take the drawn `fields`."""

    statements: tuple[str, ...]
    question: str
    answer: str


NAME_ATTRIBUTE = Attribute(
    (
        "By the way, my name is {name}.",
        "I don't think I told you my name: it's {name}.",
        "I'm {name}, nice to talk to you.",
    ),
    "What is my name?",
    "Your name is {name}.",
)
ATTRIBUTES: dict[str, Attribute] = {
    "pet": Attribute(
        (
            "I have a {kind} called {pet}.",
            "My {kind} {pet} woke me up far too early today.",
            "I spent the evening playing with {pet}, my {kind}.",
        ),
        "What is my pet's name?",
        "Your {kind} is called {pet}.",
    ),
    "hometown": Attribute(
        (
            "I grew up in {town}.",
            "I was born and raised in {town}, a small place.",
            "Back in {town}, where I grew up, everyone knew each other.",
        ),
        "Where did I grow up?",
        "You grew up in {town}.",
    ),
    "job": Attribute(
        ("I work as {job_article}.", "Being {job_article} keeps me busy.", "I've been {job_article} for years now."),
        "What do I do for a living?",
        "You work as {job_article}.",
    ),
    "hobby": Attribute(
        (
            "In my free time I love {hobby}.",
            "My favourite way to relax is {hobby}.",
            "I spent the whole weekend {hobby}, my favourite hobby.",
        ),
        "What is my hobby?",
        "Your hobby is {hobby}.",
    ),
    "favourite_food": Attribute(
        (
            "My favourite food is {food}.",
            "I could eat {food} every single day.",
            "Nothing beats {food}, it's my favourite.",
        ),
        "What is my favourite food?",
        "Your favourite food is {food}.",
    ),
    "favourite_colour": Attribute(
        (
            "My favourite colour is {colour}.",
            "I painted my room {colour}, my favourite colour.",
            "Everything I own seems to be {colour}; I love that colour.",
        ),
        "What is my favourite colour?",
        "Your favourite colour is {colour}.",
    ),
    "sibling": Attribute(
        (
            "My {relation} {sibling} is visiting next week.",
            "I had lunch with my {relation} {sibling} yesterday.",
            "My {relation}, {sibling}, just got a new job.",
        ),
        "What is my {relation}'s name?",
        "Your {relation} is called {sibling}.",
    ),
    "instrument": Attribute(
        (
            "I've started learning the {instrument}.",
            "I practise the {instrument} every evening.",
            "My neighbours hear me playing the {instrument} a lot.",
        ),
        "Which instrument do I play?",
        "You play the {instrument}.",
    ),
    "new_city": Attribute(
        (
            "I recently moved to {city}.",
            "Since moving to {city} last month I've been unpacking.",
            "The move to {city} went well.",
        ),
        "Which city did I move to?",
        "You moved to {city}.",
    ),
}
"""Keys are the config's CHAT_ATTRIBUTES (a test checks that they agree)."""

GREETINGS = ("Hi there!", "Hello again!", "Hey, good to talk to you.", "Good morning!")
ASSISTANT_GREETINGS = (
    "Hello! How have you been?",
    "Hi! What's new with you?",
    "Great to hear from you. How are things?",
)
ACKNOWLEDGEMENTS = (
    "That's lovely to hear.",
    "How interesting, tell me more!",
    "Thanks for sharing that.",
    "Oh, nice! I'll remember that.",
    "That sounds wonderful.",
)
SMALL_TALK = (
    "The weather has been strange this week.",
    "I finally finished the book I started months ago.",
    "Work has been hectic lately.",
    "I tried a new recipe yesterday and it almost worked.",
    "I went for a long walk this morning.",
    "My neighbours are painting their house.",
    "I can't believe how fast this month went by.",
    "I stayed up far too late last night.",
)
SMALL_TALK_REPLIES = (
    "That happens to everyone.",
    "Oh, how did it go?",
    "I hope you get some rest soon.",
    "Sounds like quite a week!",
    "That must have been nice.",
)


def provenance(cfg: SyntheticChatConfig, split: str = TRAIN) -> SourceProvenance:
    return common.provenance(NAME, cfg, split)


def _article(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


class _Names:
    """Made-up names that avoid the reserved ones (those of the eval personas, when drawing train personas)."""

    def __init__(self, reserved: set[str]):
        self.reserved = reserved

    def draw(self, rng: random.Random) -> str:
        name = made_up_word(rng, rng.randint(*NAME_SYLLABLES)).capitalize()
        while name in self.reserved:
            name = made_up_word(rng, rng.randint(*NAME_SYLLABLES)).capitalize()
        return name


def _fields(attribute: str, rng: random.Random, names: _Names) -> tuple[dict, list[str]]:
    """The attribute's template fields and the made-up names among them."""
    if attribute == "pet":
        pet = names.draw(rng)
        return {"kind": rng.choice(PET_KINDS), "pet": pet}, [pet]
    if attribute in ("hometown", "new_city"):
        place = names.draw(rng)
        return {"town" if attribute == "hometown" else "city": place}, [place]
    if attribute == "job":
        return {"job_article": _article(rng.choice(JOBS))}, []
    if attribute == "hobby":
        return {"hobby": rng.choice(HOBBIES)}, []
    if attribute == "favourite_food":
        return {"food": rng.choice(FOODS)}, []
    if attribute == "favourite_colour":
        return {"colour": rng.choice(COLOURS)}, []
    if attribute == "sibling":
        sibling = names.draw(rng)
        return {"relation": rng.choice(SIBLINGS), "sibling": sibling}, [sibling]
    if attribute == "instrument":
        return {"instrument": rng.choice(INSTRUMENTS)}, []
    raise KeyError(attribute)


def _fact(attribute: str, spec: Attribute, fields: dict, invented: list[str], rng: random.Random) -> dict:
    return {
        "attribute": attribute,
        "fields": fields,
        "statement": rng.choice(spec.statements).format(**fields),
        "question": spec.question.format(**fields),
        "answer": spec.answer.format(**fields),
        "invented": invented,
    }


def _persona(cfg: SyntheticChatConfig, split: str, index: int, names: _Names) -> dict:
    rng = generation_rng(NAME, cfg.seed, split, index)
    name = names.draw(rng)
    facts = [_fact("name", NAME_ATTRIBUTE, {"name": name}, [name], rng)]
    for attribute in rng.sample(CHAT_ATTRIBUTES, cfg.facts_per_persona):
        fields, invented = _fields(attribute, rng, names)
        facts.append(_fact(attribute, ATTRIBUTES[attribute], fields, invented, rng))
    told = list(facts)
    rng.shuffle(told)
    sessions = []
    for number in range(cfg.sessions):
        exchanges = [(fact["statement"], rng.choice(ACKNOWLEDGEMENTS)) for fact in told[number :: cfg.sessions]]
        exchanges += [(rng.choice(SMALL_TALK), rng.choice(SMALL_TALK_REPLIES)) for _ in range(cfg.small_talk_exchanges)]
        rng.shuffle(exchanges)
        exchanges.insert(0, (rng.choice(GREETINGS), rng.choice(ASSISTANT_GREETINGS)))
        sessions.append(
            [
                {"speaker": speaker, "text": line}
                for exchange in exchanges
                for speaker, line in zip((USER, ASSISTANT), exchange)
            ]
        )
    return {"persona_id": f"{split}-{index}", "split": split, "name": name, "facts": facts, "sessions": sessions}


def generate_rows(cfg: SyntheticChatConfig) -> Iterator[dict]:
    reserved: set[str] = set()
    eval_rows = []
    for index in range(cfg.eval_personas):
        row = _persona(cfg, EVAL, index, _Names(set()))
        eval_rows.append(row)
        reserved.update(word for fact in row["facts"] for word in fact["invented"])
    train_names = _Names(reserved)
    for index in range(cfg.personas):
        yield _persona(cfg, TRAIN, index, train_names)
    yield from eval_rows


def download(cfg: SyntheticChatConfig, cache_dir: str | Path) -> Path:
    """Generates the native rows (no network) and writes them once under `cache_dir`."""
    return common.write_native(NAME, cfg, cache_dir, lambda: generate_rows(cfg))


def native_rows(cfg: SyntheticChatConfig) -> Iterator[NativeRow]:
    """What `read_native(download(cfg, ...))` yields, without a file."""
    return common.in_memory_rows(NAME, generate_rows(cfg))


read_native = common.read_native


def session_layout(cfg: SyntheticChatConfig) -> SessionLayout:
    """The context layout of the chats (the shared `ga.format.SessionLayout`; the personalization
    evaluation formats its conversations with the same one)."""
    return SessionLayout(cfg.session_header, cfg.user_label, cfg.assistant_label, cfg.session_separator)


def session_turns(row: NativeRow) -> list[list[Turn]]:
    """The row's sessions as (role, text) turns; a speaker other than user/assistant is a DataError."""
    sessions = []
    for number in range(len(items(row, "sessions"))):
        turns = []
        for turn in range(len(items(row, f"sessions[{number}]"))):
            speaker = text(row, f"sessions[{number}][{turn}].speaker")
            if speaker not in (USER, ASSISTANT):
                raise DataError(
                    row.file,
                    row.row,
                    f"sessions[{number}][{turn}].speaker",
                    f"{speaker!r} is not one of {sorted((ASSISTANT, USER))}",
                )
            turns.append((speaker, text(row, f"sessions[{number}][{turn}].text")))
        sessions.append(turns)
    return sessions


def format_sessions(row: NativeRow, cfg: SyntheticChatConfig) -> str:
    return session_layout(cfg).text(session_turns(row))


def convert(
    rows: Iterable[NativeRow],
    cfg: SyntheticChatConfig,
    count_tokens: CountTokens,
    rng: random.Random,
    split: str = TRAIN,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """The records of one split ("train": the training records; "eval": the evaluation records)."""
    check_split(split)
    builder = RecordBuilder(NAME, cfg if split == TRAIN else dataclasses.replace(cfg, max_records=None), count_tokens)
    for row in rows:
        if split_of(row) != split:
            continue
        if builder.full:
            break
        pairs = [
            QAPair(text(row, f"facts[{i}].question"), text(row, f"facts[{i}].answer"))
            for i in range(len(items(row, "facts")))
        ]
        rng.shuffle(pairs)
        persona = f"persona:{text(row, 'persona_id')}"
        builder.add(format_sessions(row, cfg), pairs[: cfg.questions_per_record], [persona])
    return builder.result()
