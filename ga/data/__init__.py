"""Data stages of the pipeline (docs/method.md#pretraining, #embedded-default).

- `ga.data.sources`: the document source registry (embedded, local, slimpajama) and the documents stage
- `ga.data.entities`: seeded fictional entities with facts (shared with the knowledge-QA data)
- `ga.data.pretrain`: tokenize + pack + window into pretraining examples; `open_split` (lazy, per example, for training) / `load_examples` / `iter_batches`
- `ga.data.contracts`: pandera contracts of every boundary; `DataError`
"""
