"""The task families of `synthetic_icl`: each turns a seeded generator into one task (its drawn parameters and a
function drawing (input, output) examples), so that one family yields many different tasks.

Inputs are made-up words, numbers or fictional entity names, so that a task can only be solved from its
demonstrations (or, for `entity_lookup`, from the pretraining corpus's train entities). Ranges of the drawn
parameters are the named constants below.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ga.data.entities import Entity
from ga.data.sft.embedded.common import made_up_word

Example = tuple[str, str]
Draw = Callable[[random.Random], Example]

WORD_SYLLABLES = (2, 3)
"""Syllables of an input word (at least 4 letters, so letter positions up to MAX_LETTERS exist)."""
PHRASE_WORDS = (3, 5)
"""Words of an input phrase."""
MAX_LETTERS = 3
"""`first_letters` / `last_letters` keep 1..MAX_LETTERS letters."""
ALPHABET = string.ascii_lowercase
CASES: dict[str, Callable[[str], str]] = {"lower": str.lower, "upper": str.upper, "title": str.title}
REPEATS = (2, 4)
REPEAT_SEPARATORS = (" ", "-", ", ")
COUNTED_LETTERS = "aeiou"
REPLACEMENT_LETTERS = "jqwy"
"""Letters that the made-up words never contain, so a replacement is always visible."""
OPERATIONS: dict[str, Callable[[int, int], int]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
}
MODULI = (3, 19)
OPERANDS = (0, 99)
SLOPES = (2, 9)
INTERCEPTS = (-9, 9)
ARGUMENTS = (0, 99)
REDUCTIONS: dict[str, Callable[[list[int]], int]] = {
    "max": max,
    "min": min,
    "sum": sum,
    "range": lambda xs: max(xs) - min(xs),
}
LIST_LENGTHS = (3, 6)
LIST_VALUES = (0, 20)
DIVISORS = (2, 9)
NUMBERS = (1, 999)
DESCENDING_SHARE = 0.5
"""Share of `sort_words` tasks that sort in descending order."""
MULTIPLE_SHARE = 0.5
"""Share of `divisibility_label` inputs drawn as multiples of the divisor (the rest are uniform)."""
LABEL_PAIRS = (("yes", "no"), ("true", "false"), ("in", "out"))
"""Label words of `divisibility_label` (a made-up pair is drawn as often as each of these)."""
CLASSES = (2, 3)
KEYWORDS_PER_CLASS = 3
FILLER_VOCABULARY = 12
"""Made-up filler words of one `keyword_classification` task."""


def _word(rng: random.Random) -> str:
    return made_up_word(rng, rng.randint(*WORD_SYLLABLES))


def _phrase(rng: random.Random, words: int) -> list[str]:
    return [_word(rng) for _ in range(words)]


@dataclass(frozen=True)
class Task:
    """One task: `draw(rng)` gives an example; `options` are the labels of a classification task (MetaICL's
    `options`), empty otherwise."""

    name: str
    family: str
    params: dict
    draw: Draw
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rule:
    """What a family builder draws: the task's parameters, its example generator and its labels (if any)."""

    params: dict
    draw: Draw
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Resources:
    """What a family may draw on besides its generator: the train entities (never the held-out ones)."""

    train_entities: Sequence[Entity]


def _word_rule(params: dict, transform: Callable[[str], str], options: tuple[str, ...] = ()) -> Rule:
    """A rule whose input is one made-up word."""

    def draw(r):
        word = _word(r)
        return word, transform(word)

    return Rule(params, draw, options)


def _phrase_rule(params: dict, words: int, transform: Callable[[list[str]], str]) -> Rule:
    """A rule whose input is a phrase of `words` made-up words."""

    def draw(r):
        phrase = _phrase(r, words)
        return " ".join(phrase), transform(phrase)

    return Rule(params, draw)


def reverse_letters(rng, resources) -> Rule:
    case = rng.choice(sorted(CASES))
    return _word_rule({"case": case}, lambda w: CASES[case](w[::-1]))


def uppercase_nth_word(rng, resources) -> Rule:
    words = rng.randint(*PHRASE_WORDS)
    position = rng.randrange(words)
    return _phrase_rule(
        {"words": words, "position": position + 1},
        words,
        lambda p: " ".join(w.upper() if i == position else w for i, w in enumerate(p)),
    )


def first_letters(rng, resources) -> Rule:
    count = rng.randint(1, MAX_LETTERS)
    return _word_rule({"letters": count}, lambda w: w[:count])


def last_letters(rng, resources) -> Rule:
    count = rng.randint(1, MAX_LETTERS)
    return _word_rule({"letters": count}, lambda w: w[-count:])


def caesar_shift(rng, resources) -> Rule:
    shift = rng.randrange(1, len(ALPHABET))
    table = str.maketrans(ALPHABET, ALPHABET[shift:] + ALPHABET[:shift])
    return _word_rule({"shift": shift}, lambda w: w.translate(table))


def repeat_word(rng, resources) -> Rule:
    times, separator = rng.randint(*REPEATS), rng.choice(REPEAT_SEPARATORS)
    return _word_rule({"times": times, "separator": separator}, lambda w: separator.join([w] * times))


def count_letter(rng, resources) -> Rule:
    letter = rng.choice(COUNTED_LETTERS)
    return _word_rule({"letter": letter}, lambda w: str(w.count(letter)))


def affix(rng, resources) -> Rule:
    prefix, suffix = made_up_word(rng, 1), made_up_word(rng, 1)
    return _word_rule({"prefix": prefix, "suffix": suffix}, lambda w: f"{prefix}{w}{suffix}")


def replace_letter(rng, resources) -> Rule:
    old, new = rng.choice(COUNTED_LETTERS), rng.choice(REPLACEMENT_LETTERS)

    def draw(r):
        word = _word(r)
        while old not in word:  # an input the rule leaves unchanged would teach nothing
            word = _word(r)
        return word, word.replace(old, new)

    return Rule({"old": old, "new": new}, draw)


def nth_word(rng, resources) -> Rule:
    words = rng.randint(*PHRASE_WORDS)
    position = rng.randrange(words)
    return _phrase_rule({"words": words, "position": position + 1}, words, lambda p: p[position])


def sort_words(rng, resources) -> Rule:
    words, descending = rng.randint(*PHRASE_WORDS), rng.random() < DESCENDING_SHARE
    return _phrase_rule(
        {"words": words, "descending": descending}, words, lambda p: " ".join(sorted(p, reverse=descending))
    )


def modular_arithmetic(rng, resources) -> Rule:
    symbol, modulus = rng.choice(sorted(OPERATIONS)), rng.randint(*MODULI)

    def draw(r):
        a, b = r.randint(*OPERANDS), r.randint(*OPERANDS)
        return f"{a} {symbol} {b}", str(OPERATIONS[symbol](a, b) % modulus)

    return Rule({"operation": symbol, "modulus": modulus}, draw)


def linear_function(rng, resources) -> Rule:
    slope, intercept = rng.randint(*SLOPES), rng.randint(*INTERCEPTS)

    def draw(r):
        x = r.randint(*ARGUMENTS)
        return str(x), str(slope * x + intercept)

    return Rule({"slope": slope, "intercept": intercept}, draw)


def list_reduce(rng, resources) -> Rule:
    reduction = rng.choice(sorted(REDUCTIONS))

    def draw(r):
        values = [r.randint(*LIST_VALUES) for _ in range(r.randint(*LIST_LENGTHS))]
        return ", ".join(map(str, values)), str(REDUCTIONS[reduction](values))

    return Rule({"reduction": reduction}, draw)


def divisibility_label(rng, resources) -> Rule:
    divisor = rng.randint(*DIVISORS)
    choice = rng.randrange(len(LABEL_PAIRS) + 1)
    labels = LABEL_PAIRS[choice] if choice < len(LABEL_PAIRS) else (made_up_word(rng, 1), made_up_word(rng, 1))

    def draw(r):
        number = r.randint(*NUMBERS)
        if r.random() < MULTIPLE_SHARE:  # balances the labels
            number = divisor * max(1, number // divisor)
        return str(number), labels[0] if number % divisor == 0 else labels[1]

    return Rule({"divisor": divisor, "labels": list(labels)}, draw, labels)


def keyword_classification(rng, resources) -> Rule:
    classes = rng.randint(*CLASSES)
    labels = tuple(made_up_word(rng, 2) for _ in range(classes))
    keywords = [[made_up_word(rng, 2) for _ in range(KEYWORDS_PER_CLASS)] for _ in range(classes)]
    filler = [made_up_word(rng, 1) for _ in range(FILLER_VOCABULARY)]

    def draw(r):
        label = r.randrange(classes)
        phrase = [r.choice(filler) for _ in range(r.randint(*PHRASE_WORDS) - 1)]
        phrase.insert(r.randint(0, len(phrase)), r.choice(keywords[label]))
        return " ".join(phrase), labels[label]

    return Rule({"labels": list(labels), "keywords": keywords}, draw, labels)


def entity_lookup(rng, resources) -> Rule:
    kinds = sorted({entity.kind for entity in resources.train_entities})
    if not kinds:
        raise ValueError(
            "synthetic_icl: the entity_lookup family needs train entities; raise `entities` or leave "
            "the family out of `families`"
        )
    kind = rng.choice(kinds)
    pool = [entity for entity in resources.train_entities if entity.kind == kind]
    relation = rng.choice([fact.relation for fact in pool[0].facts])

    def draw(r):
        entity = r.choice(pool)
        return entity.name, entity.fact(relation).value

    return Rule({"kind": kind, "relation": relation}, draw)


FAMILY_BUILDERS: dict[str, Callable] = {
    builder.__name__: builder
    for builder in (
        reverse_letters,
        uppercase_nth_word,
        first_letters,
        last_letters,
        caesar_shift,
        repeat_word,
        count_letter,
        affix,
        replace_letter,
        nth_word,
        sort_words,
        modular_arithmetic,
        linear_function,
        list_reduce,
        divisibility_label,
        keyword_classification,
        entity_lookup,
    )
}
"""Family name -> builder, in the order of the config's ICL_FAMILIES (a test checks that they agree)."""


def make_task(family: str, index: int, rng: random.Random, resources: Resources) -> Task:
    rule = FAMILY_BUILDERS[family](rng, resources)
    return Task(f"{family}-{index}", family, rule.params, rule.draw, tuple(rule.options))
