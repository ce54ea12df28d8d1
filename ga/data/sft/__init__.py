"""Instruction-tuning (SFT) data: the nine-dataset mixture's sources (docs/method.md#sft-mixture).

- `ga.data.sft.records`: the record format (`id`, `context`, `conversations`) as a Polars schema and a pandera
  contract, and the provenance (hub id, revision, licence) a dataset manifest records
- `ga.data.sft.config`: the `sft_sources` section: one block per dataset plus the global token limits
- `ga.data.sft.sources`: one converter module per dataset (download, read_native, convert) and the registry
- `ga.data.sft.native`: readers of the native layouts (Parquet, CSV, one JSON array, JSONL) and field accessors
  whose errors name file, row and field
- `ga.data.sft.build`: what the converters share: token limits, the QA budget, distractor sampling
- `ga.data.sft.metaicl_split`: MetaICL's HR->LR task split and the guard that keeps its test tasks out of training
"""
