"""The embedded twin's three generated datasets by name, and one split of one of them in memory."""

from __future__ import annotations

from types import ModuleType

from ga.data.sft.build import CountTokens, seeded_rng
from ga.data.sft.embedded import entity_qa, synthetic_chat, synthetic_icl
from ga.data.sft.embedded.common import TRAIN

EMBEDDED_SOURCES: dict[str, ModuleType] = {module.NAME: module for module in (entity_qa, synthetic_icl, synthetic_chat)}


def generate_records(name: str, cfg, count_tokens: CountTokens, split: str = TRAIN, seed: int | None = None):
    """One split of a generated dataset in memory: `(records, drops)` as the converter returns them.

    `cfg` is the dataset's block with its token limits resolved (`SftSourcesConfig.source(name)` once the block is
    part of it); `seed` seeds the conversion's random generator as the pipeline does (`seeded_rng(seed, name)`,
    default: `cfg.seed`)."""
    module = EMBEDDED_SOURCES[name]
    rng = seeded_rng(cfg.seed if seed is None else seed, name)
    return module.convert(module.native_rows(cfg), cfg, count_tokens, rng, split=split)
