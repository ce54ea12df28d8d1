"""What every converter shares: token limits, the QA budget, distractor passages, record numbering and the
count of what each filter dropped (docs/method.md#sft-mixture).

Drop reasons are keys of the `drops` mapping a converter returns; the first word names what was dropped:
- `record_context_over_limit`: a record whose context has more tokens than its limit;
- `record_conversation_over_limit`: a record whose first QA pair alone exceeds the QA budget;
- `record_no_qa_pairs`: a record left without any QA pair by the dataset's own filters;
- `qa_pair_over_budget`: QA pairs cut from the end of a kept record's session to fit the budget;
- the converters add their own (`question_...`, `query_...`, `example_...`), listed in their docstrings.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import polars as pl

from ga.data.sft.records import conversation, passage_source, record_id, records_frame, validate_records

CountTokens = Callable[[str], int]
"""Token count of a text with the base model's tokenizer (no special tokens)."""


@dataclass(frozen=True)
class QAPair:
    question: str
    answer: str

    def __iter__(self):
        return iter((self.question, self.answer))


@dataclass(frozen=True)
class TokenLimits:
    max_context_tokens: int
    max_conversation_tokens: int

    @classmethod
    def of(cls, cfg) -> TokenLimits:
        """The limits of a dataset block resolved by `SftSourcesConfig.source(name)`."""
        if cfg.max_context_tokens is None or cfg.max_conversation_tokens is None:
            raise ValueError(
                f"{type(cfg).__name__}: token limits not resolved; take the block from SftSourcesConfig.source(name)"
            )
        return cls(cfg.max_context_tokens, cfg.max_conversation_tokens)


def seeded_rng(seed: int, dataset: str) -> random.Random:
    """The converter's random generator: seeded by the run's seed and the dataset, so that datasets are independent
    and the same seed always gives the same records."""
    digest = hashlib.blake2b(f"sft:{seed}:{dataset}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


class RecordBuilder:
    """Collects one dataset's records in order: numbers candidates, applies the context limit and the QA budget,
    counts drops, stops at `max_records`."""

    def __init__(self, dataset: str, cfg, count_tokens: CountTokens):
        self.dataset, self.count_tokens = dataset, count_tokens
        self.limits = TokenLimits.of(cfg)
        self.max_records = cfg.max_records
        self.drops: Counter[str] = Counter()
        self.rows: list[dict] = []
        self.candidates = 0

    @property
    def full(self) -> bool:
        return self.max_records is not None and len(self.rows) >= self.max_records

    def drop(self, reason: str, count: int = 1) -> None:
        self.drops[reason] += count

    def pair_tokens(self, pair: QAPair) -> int:
        return self.count_tokens(pair.question) + self.count_tokens(pair.answer)

    def add(self, context: str, pairs: Sequence[QAPair], sources: Iterable[str], tag: str | None = None) -> bool:
        """Consider one candidate record; returns whether it was kept. `sources`: what the context is made of (the
        record's `context_sources`, ga/data/sft/records.py), stored sorted and distinct."""
        sources = sorted(set(sources))
        if not sources:
            raise ValueError(f"{self.dataset} candidate {self.candidates}: a record needs its context sources")
        number = self.candidates
        self.candidates += 1
        if not pairs:
            self.drop("record_no_qa_pairs")
            return False
        if self.count_tokens(context) > self.limits.max_context_tokens:
            self.drop("record_context_over_limit")
            return False
        kept, used = [], 0
        for pair in pairs:  # the longest prefix of the session within the budget
            cost = self.pair_tokens(pair)
            if used + cost > self.limits.max_conversation_tokens:
                break
            kept.append(pair)
            used += cost
        if not kept:
            self.drop("record_conversation_over_limit")
            return False
        if len(kept) < len(pairs):
            self.drop("qa_pair_over_budget", len(pairs) - len(kept))
        self.rows.append(
            {
                "id": record_id(self.dataset, number, tag),
                "context": context,
                "conversations": conversation(kept),
                "context_sources": sources,
            }
        )
        return True

    def result(self) -> tuple[pl.DataFrame, dict[str, int]]:
        """The records (checked against the record contract) and the drop counts."""
        frame = validate_records(records_frame(self.rows), f"{self.dataset} records", dataset=self.dataset)
        return frame, {reason: count for reason, count in sorted(self.drops.items()) if count}


# ---------------------------------------------------------------- distractors
class PassagePool:
    """A dataset's distinct passages (first appearance order): where distractors are drawn from."""

    def __init__(self, passages: Iterable[str]):
        self.texts = list(dict.fromkeys(passages))
        self.index = {passage: position for position, passage in enumerate(self.texts)}


def sample_distractors(rng: random.Random, pool_size: int, excluded: Iterable[int], max_count: int) -> list[int]:
    """Indices of 0..max_count (uniform) distinct pool items, none of them `excluded`.

    Draws from the pool without the excluded items, then maps each draw past them, so that no draw is wasted and
    the random calls do not depend on which items are excluded: `randint`, then `sample`."""
    skipped = sorted(set(excluded))
    count = rng.randint(0, max_count)
    available = pool_size - len(skipped)
    draws = rng.sample(range(available), min(count, max(available, 0)))
    chosen = []
    for draw in draws:
        for index in skipped:
            if index > draw:
                break
            draw += 1
        chosen.append(draw)
    return chosen


def context_with_distractors(
    rng: random.Random, pool: PassagePool, own: Sequence[str], max_distractors: int, separator: str
) -> tuple[str, list[str]]:
    """The record's own passages plus 0..max_distractors random other passages of the pool, shuffled and joined;
    and the context's sources (`passage_source` of every passage in it, own and distractor).

    A distractor is never one of the record's own passages (nor a copy of one: the pool holds distinct texts),
    and never appears twice. Random calls: `randint`, `sample`, `shuffle`."""
    excluded = {pool.index[passage] for passage in own}
    chosen = list(own) + [pool.texts[j] for j in sample_distractors(rng, len(pool.texts), excluded, max_distractors)]
    rng.shuffle(chosen)
    return separator.join(chosen), [passage_source(passage) for passage in chosen]
