"""Instruction-tuning (SFT) data: the nine-dataset mixture and its embedded twin (docs/method.md#sft-mixture).

- `ga.data.sft.records`: the record format (`id`, `context`, `conversations`) as a Polars schema and a pandera
  contract, and the provenance (hub id, revision, licence) a dataset manifest records
- `ga.data.sft.config`: the `sft_sources` section: one block per dataset plus the global token limits
- `ga.data.sft.sources`: one converter module per dataset (download, read_native, convert) and the registry
- `ga.data.native`: readers of the native layouts (Parquet, CSV, one JSON array, JSONL) and field accessors
  whose errors name file, row and field
- `ga.data.sft.build`: what the converters share: token limits, the QA budget, distractor sampling
- `ga.data.sft.metaicl_split`: MetaICL's HR->LR task split and the guard that keeps its test tasks out of training
- `ga.data.hub`: the only two network calls (a dataset split, a single file), cached per revision
- `ga.data.sft.embedded`: the embedded twin (entity QA, synthetic ICL, synthetic multi-session chats), offline
- `ga.data.sft.sections`: the `sft_sources` section (both kinds of blocks) and the `sft_data` section, apart from
  the work code so that reading a run config imports no table library
- `ga.data.sft.mixture`: one lookup for every dataset (`sft_source`), the mixture
- `ga.format`: the one context format and the chat rendering with assistant-token labels, shared by
  training, evaluation and the user-facing API
- `ga.data.sft.tokenize`: records -> context + conversation windows (the model's inputs), shards and their loader
"""
