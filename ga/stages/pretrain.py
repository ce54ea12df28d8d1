"""Stage pretrain: train the generator of a frozen base model on the prepared examples with DeepSpeed
(docs/method.md#pretraining-objective), resuming from the latest checkpoint after a kill.

Outputs: `generator` (a GenerativeAdapter.save_pretrained folder), `metrics` (one JSON row per optimizer step and per
validation) and `validation` (final held-out perplexities: own / none / other adapter x completion /
reconstruction). Resumable checkpoints live in `state/` beside the generator folder: they are not rule outputs, so
Snakemake keeps them when a job is killed, and rerunning resumes.

One process: `ga pretrain ...`; several GPUs or nodes: the rule prefixes `ga.launch.launcher(resources)`.
"""

from __future__ import annotations

from ga.stages import Stage

STAGE = Stage(
    name="pretrain",
    summary="pretrain the generator with DeepSpeed (resumes from checkpoints)",
    inputs={
        "base_model": "base model folder (from fetch_base)",
        "train": "training examples folder (from pretrain_data)",
        "val": "held-out examples folder (from pretrain_data)",
        "documents": "pretraining documents folder (from pretrain_documents): the paper's validation protocol "
        "scores its held-out documents",
        "deepspeed_config": "DeepSpeed ZeRO settings (JSON; the same file as pretrain.deepspeed_config)",
    },
    outputs={
        "generator": "generator folder to write",
        "metrics": "metrics JSONL to write",
        "validation": "final validation JSON to write",
    },
)


def depends_on(config) -> dict:
    """What the trained generator and its validation depend on (the data and base model are rule inputs)."""
    return {
        "seed": config.seed,
        "base_model": config.base_model.depends_on(),
        "adapter": config.adapter.depends_on(),
        "pretrain": config.pretrain.depends_on(),
    }


def resume_fingerprint(config, train_manifest: dict, val_manifest: dict) -> dict:
    """What a checkpoint must agree on to be resumed: depends_on without values that may change between a kill and
    a resume (validation settings), plus the data's content hashes."""
    return {
        **depends_on(config),
        "pretrain": config.pretrain.resumable_depends_on(),
        "train_data": train_manifest.get("content_sha256"),
        "val_data": val_manifest.get("content_sha256"),
    }


def run(config, inputs, outputs) -> dict:
    import torch

    import ga
    from ga.base import load_base
    from ga.data.examples import open_split
    from ga.train.checkpoint import state_dir_beside
    from ga.train.distributed import init_distributed
    from ga.train.loop import Trainer, save_training_outputs, training_summary
    from ga.train.objective import PretrainObjective
    from ga.train.paper_protocol import paper_validation

    dist_info = init_distributed()
    # Lazily read (memory-mapped Arrow copies): a rank's memory does not grow with the size of the split.
    train_set, train_manifest = open_split(inputs.train)
    val_set, val_manifest = open_split(inputs.val)
    n_completion = int(train_manifest["layout"]["completion_windows"])

    base = config.base_model
    # Straight onto this rank's device: the ranks of a node never hold CPU copies of the base model at once.
    base_model, _ = load_base(
        inputs.base_model, dtype=base.dtype, attn_implementation=base.attn_implementation, device=dist_info.device
    )
    adapter_config = ga.GenerativeAdapterConfig.from_dict(
        {**config.adapter.to_dict(), "base_model_id": base.id, "base_model_revision": base.revision}
    )
    torch.manual_seed(config.seed)  # the generator's initialisation
    model = ga.GenerativeAdapter(base_model, adapter_config)

    state_dir = state_dir_beside(outputs.generator)
    fingerprint = resume_fingerprint(config, train_manifest, val_manifest)
    objective = PretrainObjective(n_completion, config.pretrain.loss_parts)
    trainer = Trainer(model, objective, train_set, val_set, config.pretrain, state_dir, config.seed, fingerprint)
    result = trainer.run()
    # The paper's Table 2 protocol beside this project's own numbers; through the engine (ZeRO-3 holds partitions).
    result.update(paper_validation(trainer.engine, inputs.documents, inputs.base_model, config, dist_info))
    result = save_training_outputs(
        model,
        result,
        state_dir,
        outputs.generator,
        outputs.metrics,
        outputs.validation,
        dist_info,
        lambda: {"train_examples": len(train_set), "val_examples": len(val_set)},
    )
    return None if result is None else training_summary(result, ("_ppl",))
