"""The embedded twin of the instruction-tuning data: three datasets generated offline, deterministic from the run's
seed, in the record format of the real sources (docs/method.md#embedded-default).

- `entity_qa`: knowledge QA about the pretraining corpus's fictional entities; split by entity, with the same
  hold-out as the pretraining data (`ga.data.entities.split_key`);
- `synthetic_icl`: synthetic in-context-learning tasks in MetaICL's layout; split by task family;
- `synthetic_chat`: multi-session chats of fictional personas; split by persona.

Each module has the converter API of ga/data/sft/sources (`NAME`, `LICENCE`, `provenance(cfg)`,
`download(cfg, cache_dir)`, `read_native(path)`, `convert(rows, cfg, count_tokens, rng)`), where `download`
generates the native rows (JSONL) instead of fetching them, and `convert` takes `split="train"` (default: the
training records, what the per-dataset stage makes) or `split="eval"` (the evaluation records of the embedded
default). `native_rows(cfg)` yields the generated rows without a file. Settings: ga/data/sft/embedded/config.py.
"""
from __future__ import annotations

from types import ModuleType

from ga.data.sft.build import CountTokens, seeded_rng
from ga.data.sft.embedded import entity_qa, synthetic_chat, synthetic_icl
from ga.data.sft.embedded.common import EVAL, SPLITS, TRAIN

EMBEDDED_SOURCES: dict[str, ModuleType] = {module.NAME: module for module in (entity_qa, synthetic_icl,
                                                                              synthetic_chat)}

__all__ = ["EMBEDDED_SOURCES", "EVAL", "SPLITS", "TRAIN", "generate_records"]


def generate_records(name: str, cfg, count_tokens: CountTokens, split: str = TRAIN, seed: int | None = None):
    """One split of a generated dataset in memory: `(records, drops)` as the converter returns them.

    `cfg` is the dataset's block with its token limits resolved (`SftSourcesConfig.source(name)` once the block is
    part of it); `seed` seeds the conversion's random generator as the pipeline does (`seeded_rng(seed, name)`,
    default: `cfg.seed`)."""
    module = EMBEDDED_SOURCES[name]
    rng = seeded_rng(cfg.seed if seed is None else seed, name)
    return module.convert(module.native_rows(cfg), cfg, count_tokens, rng, split=split)
