"""`ga pretrain`: pretrain the generator of a frozen base model on prepared examples (SPEC §2.1).

Inputs: the resolved pipeline config (sections seed, base_model, adapter, pretrain), a base model dir and the
train and val example dirs (shards + manifest.json, from `ga prepare-pretrain-data`).
Outputs under --out:
    generator/        GenerativeAdapter.save_pretrained directory (the final output)
    metrics.jsonl     one row per optimizer step ("kind": "train") and per validation ("kind": "val")
    validation.json   final validation metrics (own / none / other adapter x completion / reconstruction)
    state/            resumable checkpoints and the live metrics log: rerunning after a kill resumes from here
Single process: `ga pretrain ...`; several GPUs: `torchrun --nproc_per_node N -m ga.cli pretrain ...`; several nodes:
`srun torchrun --nnodes $SLURM_NNODES --nproc_per_node N --rdzv-backend c10d --rdzv-endpoint $HOST:PORT ...`.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import yaml

from ga.train.config import TrainConfig

# Keys of the `pretrain` section that change neither the trained weights nor the data order; changing them must
# not invalidate checkpoints of a run in progress.
NON_SEMANTIC_KEYS = ("checkpoint_every", "keep_checkpoints", "eval_every", "val_examples", "val_batch_size",
                     "max_skipped_steps", "num_threads", "tensorboard", "resources")


class ExampleSet:
    """Index access to the examples of one split (tensors of (N, S, L) / (N, S)), one dict per example."""

    KEYS = ("input_ids", "attention_mask", "labels", "adapter_prefix")

    def __init__(self, tensors: dict):
        self.tensors = {key: tensors[key] for key in self.KEYS}

    def __len__(self) -> int:
        return int(self.tensors["input_ids"].shape[0])

    def __getitem__(self, index: int) -> dict:
        return {key: value[index] for key, value in self.tensors.items()}


def read_config(path: Path) -> dict:
    try:
        config = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError as err:
        raise FileNotFoundError(f"--config: {path} does not exist") from err
    for key in ("seed", "base_model", "adapter", "pretrain"):
        if key not in config:
            raise KeyError(f"{path}: missing top-level key {key!r}")
    return config


def load_split(split_dir: Path) -> tuple[ExampleSet, dict]:
    from ga.data.pretrain import load_examples, read_manifest

    split_dir = Path(split_dir)
    if not (split_dir / "manifest.json").is_file():
        raise FileNotFoundError(f"{split_dir}: no manifest.json (run `ga prepare-pretrain-data` first)")
    return ExampleSet(load_examples(split_dir)), read_manifest(split_dir)


def run(config: dict, base_dir: Path, train_dir: Path, val_dir: Path, out_dir: Path) -> dict:
    import torch

    import ga
    from ga.base import load_base
    from ga.train.distributed import init_distributed
    from ga.train.loop import export_generator, train
    from ga.train.objective import PretrainObjective

    cfg = TrainConfig.from_dict(config["pretrain"])
    seed = int(config["seed"])
    dist_info = init_distributed()
    train_set, train_manifest = load_split(train_dir)
    val_set, val_manifest = load_split(val_dir)
    n_completion = int(train_manifest["layout"]["completion_windows"])

    base_cfg = config["base_model"]
    base_model, _ = load_base(base_dir, dtype=base_cfg.get("dtype", "float32"),
                              attn_implementation=base_cfg.get("attn_implementation", "sdpa"))
    adapter_cfg = ga.GenerativeAdapterConfig.from_dict(
        {**config["adapter"], "base_model_id": base_cfg.get("id"), "base_model_revision": base_cfg.get("revision")})
    torch.manual_seed(seed)  # the generator's initialisation
    model = ga.GenerativeAdapter(base_model, adapter_cfg)

    fingerprint = {
        "seed": seed,
        "adapter": adapter_cfg.to_dict(),
        "base_model": base_cfg,
        "pretrain": {k: v for k, v in cfg.to_dict().items() if k not in NON_SEMANTIC_KEYS},
        "train_data": train_manifest.get("content_sha256"),
        "val_data": val_manifest.get("content_sha256"),
    }
    out_dir = Path(out_dir)
    state_dir = out_dir / "state"
    result = train(model, PretrainObjective(n_completion), train_set, val_set, cfg, state_dir, seed, fingerprint)
    zero_stage = result["zero_stage"]
    export_generator(model, out_dir / "generator", zero_stage, dist_info)
    if dist_info.is_main:
        result["train_examples"], result["val_examples"] = len(train_set), len(val_set)
        tmp = out_dir / "validation.json.tmp"
        tmp.write_text(json.dumps(result, indent=2) + "\n")
        tmp.replace(out_dir / "validation.json")
        shutil.copyfile(state_dir / "metrics.jsonl", out_dir / "metrics.jsonl.tmp")
        (out_dir / "metrics.jsonl.tmp").replace(out_dir / "metrics.jsonl")
    dist_info.barrier()
    return result


def cli_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ga pretrain", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, type=Path, help="resolved pipeline config (YAML)")
    parser.add_argument("--base", required=True, type=Path, help="base model dir (from `ga fetch-base`)")
    parser.add_argument("--train", required=True, type=Path, help="training examples dir (shards + manifest.json)")
    parser.add_argument("--val", required=True, type=Path, help="held-out examples dir (shards + manifest.json)")
    parser.add_argument("--out", required=True, type=Path, help="output dir (generator/, metrics.jsonl, state/)")
    args = parser.parse_args(argv)
    config = read_config(args.config)
    result = run(config, args.base, args.train, args.val, args.out)
    summary = {k: round(v, 4) for k, v in result.items() if k.endswith("_ppl")}
    print(f"[pretrain] done: step {result['step']}, skipped {result['skipped_steps']}, {summary}", flush=True)
    return 0
