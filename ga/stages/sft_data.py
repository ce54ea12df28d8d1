"""Stage sft_data: the instruction-tuning mixture (held-out validation slice per dataset, caps, weights, seeded
shuffle, MetaICL test-task guard) tokenized into context + conversation windows; train/ and val/ Parquet shards
with manifests of per-dataset statistics (docs/method.md#model-inputs-of-a-record)."""

from __future__ import annotations

from ga.stages import Stage

STAGE = Stage(
    name="sft_data",
    summary="mix, hold out, shuffle and tokenize the instruction-tuning records into train and validation examples",
    inputs={
        "sources": "dataset folders (from sft_sources), one per dataset of sft_data.datasets",
        "base_model": "base model folder (its tokenizer and chat template are used)",
    },
    outputs={"train": "training examples folder to write", "val": "held-out examples folder to write"},
    many=("sources",),
)


def depends_on(config) -> dict:
    return config.sft_data.mixture_depends_on(config.adapter.window)


def run(config, inputs, outputs) -> dict:
    from ga.data.sft.mixture import prepare_sft_data

    manifests = prepare_sft_data(
        config.sft_data, config.adapter.window, inputs.sources, inputs.base_model, outputs.train, outputs.val
    )
    return {split: {"examples": m["examples"], "records": m["records"]} for split, m in manifests.items()}
