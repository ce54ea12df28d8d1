"""The instruction-tuning sources: registry name -> converter module (docs/method.md#sft-mixture).

Every module has the same API:
- `NAME`, `LICENCE` (None where not verified here) and `provenance(cfg) -> SourceProvenance`;
- `download(cfg, cache_dir, <hub call>) -> path(s)`: the real download (`datasets.load_dataset` saved as Parquet,
  or `huggingface_hub.hf_hub_download` of single files) at the pinned revision; the hub call is a parameter so
  that tests can stand in for the hub (ga/data/hub.py);
- `read_native(what download returned) -> iterator of NativeRow`: the rows in the source's native layout;
- `convert(rows, cfg, count_tokens, rng) -> (records, drops)`: the conversion rules; `cfg` is the dataset's block
  from `SftSourcesConfig.source(name)` (token limits resolved), `count_tokens` counts base-model tokens, `rng` is
  `build.seeded_rng(seed, name)`; `records` follow the record contract, `drops` counts dropped items by reason.
"""

from __future__ import annotations

from types import ModuleType

from ga.data.sft.sources import booksum, coqa, drop, longalpaca, metaicl, msmarco, narrativeqa, pubmedqa, pwc, quail

SFT_SOURCES: dict[str, ModuleType] = {
    module.NAME: module
    for module in (coqa, drop, narrativeqa, pubmedqa, quail, msmarco, booksum, longalpaca, metaicl, pwc)
}

MIXTURE_SOURCES = ("coqa", "drop", "narrativeqa", "pubmedqa", "quail", "msmarco", "booksum", "longalpaca", "metaicl")
"""The nine datasets of the released mixture; `pwc` is the paper table's alternative to `longalpaca`."""
