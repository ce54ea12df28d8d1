"""Stage pretrain_documents: draw pretraining documents from the configured source (the embedded corpus, your
files, or SlimPajama) until the token budget is spent, as Parquet shards + manifest.json
(docs/method.md#pretraining-data)."""

from __future__ import annotations

from ga.stages import Stage

STAGE = Stage(
    name="pretrain_documents",
    summary="materialise pretraining documents (embedded, local files or SlimPajama) up to the token budget",
    inputs={"base_model": "base model folder (budgets are counted with its tokenizer)"},
    outputs={"documents": "folder to write (Parquet shards + manifest.json)"},
)


def depends_on(config) -> dict:
    return config.pretrain_data.documents_depends_on()


def run(config, inputs, outputs) -> dict:
    from ga.data.sources import write_documents

    manifest = write_documents(config.pretrain_data, inputs.base_model, outputs.documents)
    return {"documents": manifest["documents"], "tokens": manifest["tokens"], "sources": manifest["sources"]}
