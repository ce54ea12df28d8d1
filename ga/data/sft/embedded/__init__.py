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
default). `native_rows(cfg)` yields the generated rows without a file. Settings: ga/data/sft/embedded/config.py;
the registry of the three and `generate_records`: ga/data/sft/embedded/registry.py.
"""
