"""Stage pretrain_data: tokenize, pack and window the documents into pretraining examples (completion and
reconstruction windows), split into train/ and val/ by document (docs/method.md#pretraining-objective)."""

from __future__ import annotations

from ga.stages import Stage

STAGE = Stage(
    name="pretrain_data",
    summary="tokenize, pack and window pretraining documents into train and validation examples",
    inputs={
        "documents": "documents folder (from pretrain_documents)",
        "base_model": "base model folder (its tokenizer is used)",
    },
    outputs={"train": "training examples folder to write", "val": "held-out examples folder to write"},
)


def depends_on(config) -> dict:
    return config.pretrain_data.examples_depends_on()


def run(config, inputs, outputs) -> dict:
    from ga.data.pretrain import prepare_examples

    manifests = prepare_examples(config.pretrain_data, inputs.documents, inputs.base_model, outputs.train, outputs.val)
    return {split: {"examples": m["examples"], "tokens": m["tokens"]} for split, m in manifests.items()}
