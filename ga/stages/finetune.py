"""Stage finetune: instruction-tune the pretrained generator on the SFT mixture with the same DeepSpeed loop as
pretraining (docs/method.md#instruction-tuning), resuming from the latest checkpoint after a kill.

Starts from the pretrained generator's weights; the base model stays frozen. Batches are length-grouped records
(ga/train/sft_objective.py); the loss covers the assistant tokens only. Outputs: `generator` (a
GenerativeAdapter.save_pretrained folder), `metrics` (one JSON row per optimizer step and per validation) and
`validation` (held-out answer-token perplexity per dataset with the own / other / no adapter, the padding share,
and the greedy-generation answer-F1 check). Checkpoints live in `state/` beside the generator folder, as for
pretraining.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ga.stages import Stage

STAGE = Stage(
    name="finetune",
    summary="instruction-tune the pretrained generator with DeepSpeed (resumes from checkpoints)",
    inputs={
        "base_model": "base model folder (from fetch_base)",
        "pretrained": "pretrained generator folder (from pretrain)",
        "train": "instruction-tuning training examples folder (from sft_data)",
        "val": "held-out instruction-tuning examples folder (from sft_data)",
        "deepspeed_config": "DeepSpeed ZeRO settings (JSON; the same file as finetune.deepspeed_config)",
    },
    outputs={
        "generator": "generator folder to write",
        "metrics": "metrics JSONL to write",
        "validation": "final validation JSON to write",
    },
)


def depends_on(config) -> dict:
    """What the tuned generator and its validation depend on (data, base model and pretrained generator are rule
    inputs)."""
    return {
        "seed": config.seed,
        "base_model": config.base_model.depends_on(),
        "adapter": config.adapter.depends_on(),
        "finetune": config.finetune.depends_on(),
    }


def resume_fingerprint(config, train_manifest: dict, val_manifest: dict, pretrained_sha256: str) -> dict:
    """What a checkpoint must agree on to be resumed: depends_on without resume-safe values, plus the content
    hashes of the data and of the pretrained generator it started from."""
    return {
        **depends_on(config),
        "finetune": config.finetune.resumable_depends_on(),
        "train_data": train_manifest.get("content_sha256"),
        "val_data": val_manifest.get("content_sha256"),
        "pretrained_generator": pretrained_sha256,
    }


def run(config, inputs, outputs) -> dict:
    from transformers import AutoTokenizer

    import ga
    from ga.base import load_base
    from ga.data.sft.tokenize import SftExamples
    from ga.eval.answer_f1 import answer_f1
    from ga.io import sha256_file
    from ga.model import GENERATOR_WEIGHTS
    from ga.train.checkpoint import state_dir_beside
    from ga.train.distributed import init_distributed
    from ga.train.loop import Trainer, save_training_outputs, training_summary
    from ga.train.sft_objective import LengthGroupedBatches, SftObjective, token_padding_share

    dist_info = init_distributed()
    cfg = config.finetune
    train_records, val_set = SftExamples(inputs.train), SftExamples(inputs.val, interleave_datasets=True)
    datasets = [row["dataset"] for row in train_records.manifest["datasets"]]
    # The loop draws one length-grouped group of micro_batch_size records per micro-batch.
    train_set = LengthGroupedBatches(train_records, cfg.micro_batch_size, config.seed)
    loop_cfg = dataclasses.replace(
        cfg, steps=cfg.run_steps(len(train_records), dist_info.world_size), micro_batch_size=1
    )

    base = config.base_model
    base_model, _ = load_base(
        inputs.base_model, dtype=base.dtype, attn_implementation=base.attn_implementation, device=dist_info.device
    )
    model = ga.GenerativeAdapter.from_pretrained(inputs.pretrained, base_model=base_model)

    state_dir = state_dir_beside(outputs.generator)
    fingerprint = resume_fingerprint(
        config, train_records.manifest, val_set.manifest, sha256_file(Path(inputs.pretrained) / GENERATOR_WEIGHTS)
    )
    trainer = Trainer(model, SftObjective(datasets), train_set, val_set, loop_cfg, state_dir, config.seed, fingerprint)
    result = trainer.run()

    def checks_and_counts() -> dict:
        """The greedy-generation answer-F1 check and the batching counts (main process, after the export)."""
        checked = model
        if result["zero_stage"] == 3:  # partitioned parameters: generate with the exported weights instead
            checked_base, _ = load_base(
                inputs.base_model,
                dtype=base.dtype,
                attn_implementation=base.attn_implementation,
                device=dist_info.device,
            )
            checked = ga.GenerativeAdapter.from_pretrained(outputs.generator, base_model=checked_base)
        tokenizer = AutoTokenizer.from_pretrained(inputs.base_model)
        return {
            "answer_f1": answer_f1(checked, tokenizer, val_set, cfg.generation_records, cfg.max_new_tokens),
            "train_records": len(train_records),
            "train_groups": len(train_set),
            "val_examples": len(val_set),
            "records_per_group": cfg.micro_batch_size,
            "padding_window_share": train_set.padding_share(),
            "padding_window_share_without_grouping": train_set.random_padding_share(),
            "padding_token_share_within_windows": token_padding_share(train_records),
        }

    result = save_training_outputs(
        model, result, state_dir, outputs.generator, outputs.metrics, outputs.validation, dist_info, checks_and_counts
    )
    if result is None:
        return None
    f1 = {
        f"{dataset}_{arm}": round(value, 3)
        for dataset, scores in result["answer_f1"].get("per_dataset", {}).items()
        for arm, value in scores.items()
        if arm.endswith("_f1")
    }
    return {**training_summary(result, ("_ppl", "_lower", "_examples", "_sign_p")), **f1}
