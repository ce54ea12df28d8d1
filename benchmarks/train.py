"""Training-loop benchmark (issue "pretrain the generator"): tokens/s and optimizer-step time of the real DeepSpeed
loop (ga.train.loop.train) for the smoke config and for SmolLM2-135M-Instruct with the embedded default's settings;
and instruction tuning (issue "Fine-tuning") on the embedded SFT mixture.

    python benchmarks/train.py [--steps 6] [--warmup 2] [--threads 1] [--skip-smollm2]
                               [--sft-steps 4] [--sft-warmup 1] [--sft-group-size 4] [--sft-smollm2] [--skip-sft]
                               [--sft-svd lowrank,exact]

Pretraining examples have the configs' pretraining layout (ga.data.pretrain.build_examples on random token
sequences: the cost depends on shapes, not content). The first --warmup steps are excluded from the timings. Both
runs share one process, side by side.

Instruction tuning (CPU): the embedded default's SFT mixture (config/config.yaml: sft_sources, sft_data) is built by
the two data stages' real code (`ga.data.sft.mixture.build_mixture`) with SmolLM2's tokenizer, and the finetune
loop (`SftObjective`, records in groups of --sft-group-size per micro-batch, as the finetune stage draws them) runs
twice on the smoke config's tiny random Llama (and on SmolLM2-135M with --sft-smollm2): length-grouped batches and
random batches, side by side. Reported per run: real (non-pad) tokens/s as the loop counts them, positions/s (all
B x S x L positions the model computes, padding windows included), and the padding shares of the split's groups:
window slots (padding windows) and token positions (padding windows plus the padded ends of real windows).

Instruction tuning (GPU, when torch.cuda.is_available(); a printed line says it is skipped otherwise): a
Mistral-7B-shaped model with random weights (ga/testing/throughput.py's MISTRAL_7B, bf16, ZeRO-2, gradient
checkpointing, the paper's generator d_r 1024, r 128, o_proj) on the embedded mixture rebuilt at the paper's SFT layout (windows
of 1,024, at most 8,192 tokens per record), token ids folded into Mistral's vocabulary (shapes and padding are
the mixture's own; content does not matter for the cost), once per SVD method of --sft-svd. Tokens/s and MFU per
timed step (benchmarks/gpu.py's FLOP count over the positions of that step's micro-batch; also against real tokens
only), medians reported. Measured numbers: docs/design.md#measured-on-one-h200.

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import ga
from ga.data.config import WindowLayout
from ga.data.pretrain import build_examples, examples_to_tensors
from ga.run_config import RunConfig
from ga.testing.throughput import (
    MODELS,
    PAPER_LAYOUT,
    TFLOP,
    ZERO2_CONFIG,
    ThroughputTrainer,
    build_base,
    flops_per_step,
    free_memory,
)
from ga.train import PretrainObjective, TrainConfig
from ga.train.loop import train
from ga.train.objective import MODEL_INPUT_KEYS
from ga.train.sft_objective import token_padding_share

REPO = Path(__file__).resolve().parents[1]


def layout_examples(config: dict, vocab_size: int, count: int, seed: int) -> list[dict]:
    """`count` examples of the config's layout, as the training loop takes them."""
    section = config["pretrain_data"]
    layout = WindowLayout(section["window"], section["completion_windows"], section["reconstruction_windows"])
    rng = np.random.default_rng(seed)
    sequences = rng.integers(0, vocab_size, size=(count, layout.seq_len), dtype=np.int32)
    tensors = examples_to_tensors(build_examples(sequences, 0, layout, seed, "train", pad_id=0), layout)
    return [{key: tensors[key][i] for key in MODEL_INPUT_KEYS} for i in range(count)]


def bench(name: str, base_model, config: dict, steps: int, warmup: int, threads: int) -> dict:
    cfg_values = dict(
        config["pretrain"],
        steps=warmup + steps,
        eval_every=0,
        val_examples=2,
        checkpoint_every=10**9,
        num_threads=threads,
    )
    cfg_values["deepspeed_config"] = str(REPO / cfg_values["deepspeed_config"])
    cfg = TrainConfig.from_dict(cfg_values)
    torch.manual_seed(0)
    model = ga.GenerativeAdapter(base_model, ga.GenerativeAdapterConfig.from_dict(config["adapter"]))
    examples = layout_examples(config, base_model.config.vocab_size, cfg.micro_batch_size * (warmup + steps) + 2, 0)
    train_set, val_set = examples[:-2], examples[-2:]
    objective = PretrainObjective(config["pretrain_data"]["completion_windows"])
    with tempfile.TemporaryDirectory() as state:
        result = train(model, objective, train_set, val_set, cfg, Path(state), seed=0)
        rows = [json.loads(line) for line in (Path(state) / "metrics.jsonl").read_text().splitlines()]
    timed = [r for r in rows if r["kind"] == "train"][warmup:]
    return {
        "name": name,
        "tokens_per_s": statistics.median(r["tokens_per_s"] for r in timed),
        "step_time_s": statistics.median(r["step_time_s"] for r in timed),
        "tokens_per_step": timed[0]["tokens"],
        "timed_steps": len(timed),
        "peak_mem_gib": max(r["mem_gib"] for r in timed),
        "trainable_parameters": result["trainable_parameters"],
        "frozen_parameters": result["frozen_parameters"],
        "zero_stage": result["zero_stage"],
        "gradient_checkpointing": cfg.gradient_checkpointing,
        "micro_batch_size": cfg.micro_batch_size,
    }


# ---------------------------------------------------------------------------------------------------- SFT
SFT_SEED = 0
NEVER = 10**9
"""checkpoint_every for a run that should write no periodic checkpoint."""
SFT_VAL_EXAMPLES = 2
"""Held-out records the loop validates on at the end (the fewest it accepts)."""
PAPER_SFT_WINDOW, PAPER_SFT_MAX_TOKENS = 1024, 8192
"""The paper's instruction-tuning layout: windows of 1,024, at most 8,192 tokens per record."""


def embedded_sft_mixture(config: dict, tokenizer_dir: Path, out: Path, window: int, max_tokens: int | None = None):
    """The run config's SFT mixture built by both data stages' real code: (train, val) `SftExamples`."""
    from ga.data.sft.mixture import build_mixture
    from ga.data.sft.sections import SftDataConfig, SftSourcesSectionConfig
    from ga.data.sft.tokenize import SftExamples

    sources = SftSourcesSectionConfig.from_dict(config["sft_sources"])
    sources.set_run_values(config["seed"], config["pretrain_data"]["val_fraction"])
    data = dict(config["sft_data"], seed=config["seed"])
    if max_tokens is not None:
        data["max_tokens"] = max_tokens
    splits = build_mixture(sources, SftDataConfig.from_dict(data), window, tokenizer_dir, out, out / "cache")
    return SftExamples(splits["train"]), SftExamples(splits["val"], interleave_datasets=True)


class RecordedGroups:
    """A grouped training split that records what each micro-batch it hands out computes: positions (records x most
    windows x L, padding windows included) and real tokens; token ids folded into `vocab_size` when given (for a
    model whose vocabulary is smaller than the tokenizer's: the cost depends on shapes, not ids)."""

    def __init__(self, groups, vocab_size: int | None = None):
        self.groups, self.vocab_size = groups, vocab_size
        self.positions: list[int] = []
        self.real_tokens: list[int] = []

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, index: int) -> list[dict]:
        records = self.groups[index]
        windows = max(int(r["adapter_prefix"].shape[0]) for r in records)
        self.positions.append(len(records) * windows * int(records[0]["input_ids"].shape[1]))
        self.real_tokens.append(sum(int(r["attention_mask"].sum()) for r in records))
        return [fold_ids(r, self.vocab_size) for r in records] if self.vocab_size else records


def fold_ids(record: dict, vocab_size: int) -> dict:
    from ga.labels import IGNORE_INDEX

    labels = record["labels"]
    return dict(
        record,
        input_ids=record["input_ids"] % vocab_size,
        labels=labels.where(labels == IGNORE_INDEX, labels % vocab_size),
    )


def sft_run(
    name: str,
    model,
    train_records,
    val_records,
    cfg_values: dict,
    group_size: int,
    by_length: bool,
    steps: int,
    warmup: int,
    vocab_size: int | None = None,
    flops=None,
    peak_flops: float | None = None,
    trainer_class=None,
) -> dict:
    """One finetune-loop run over `steps` timed steps (after `warmup`); with `flops(positions)` and `peak_flops`,
    also MFU per timed step (medians reported)."""
    from ga.train.config import FinetuneConfig
    from ga.train.sft_objective import LengthGroupedBatches, SftObjective

    groups = LengthGroupedBatches(train_records, group_size, SFT_SEED, by_length=by_length)
    recorded = RecordedGroups(groups, vocab_size)
    val_set = (
        val_records if vocab_size is None else [fold_ids(val_records[i], vocab_size) for i in range(SFT_VAL_EXAMPLES)]
    )
    cfg = FinetuneConfig.from_dict(
        dict(
            cfg_values,
            steps=warmup + steps,
            micro_batch_size=1,
            grad_accum_steps=1,
            eval_every=0,
            val_examples=SFT_VAL_EXAMPLES,
            checkpoint_every=NEVER,
        )
    )
    datasets = [row["dataset"] for row in train_records.manifest["datasets"]]
    with tempfile.TemporaryDirectory() as state:
        if trainer_class is None:
            train(model, SftObjective(datasets), recorded, val_set, cfg, Path(state), seed=SFT_SEED)
        else:
            trainer = trainer_class(model, SftObjective(datasets), recorded, val_set, cfg, Path(state), seed=SFT_SEED)
            trainer.run()
            if hasattr(trainer.engine, "destroy"):
                trainer.engine.destroy()
        rows = [json.loads(line) for line in (Path(state) / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if r["kind"] == "train"]
    # the loop fetches one group per step, in step order; the validation reads the val set, not these groups
    per_step = list(zip(train_rows, recorded.positions, recorded.real_tokens))[warmup:]
    assert all(row["tokens"] == real for row, _, real in per_step), "the loop's token count is the real tokens"
    result = {
        "name": name,
        "batching": "length-grouped" if by_length else "random",
        "records_per_micro_batch": group_size,
        "tokens_per_s": statistics.median(row["tokens_per_s"] for row, _, _ in per_step),
        "positions_per_s": statistics.median(positions / row["step_time_s"] for row, positions, _ in per_step),
        "step_time_s": statistics.median(row["step_time_s"] for row, _, _ in per_step),
        "timed_steps": len(per_step),
        "padding_window_share": groups.padding_share(),
        "padding_token_share": groups.token_padding_share(),
        "timed_padding_token_share": 1 - sum(real for _, _, real in per_step) / sum(p for _, p, _ in per_step),
        "peak_mem_gib": max(row["mem_gib"] for row, _, _ in per_step),
    }
    if flops is not None:
        result["mfu"] = statistics.median(
            flops(positions) / row["step_time_s"] / peak_flops for row, positions, _ in per_step
        )
        result["mfu_real_tokens"] = statistics.median(
            flops(real) / row["step_time_s"] / peak_flops for row, _, real in per_step
        )
    return result


def sft_cpu_bench(name: str, base_model, config: dict, train_records, val_records, args) -> list[dict]:
    """Length-grouped and random batching, side by side, on the same model weights and data."""
    cfg_values = dict(
        config["finetune"],
        deepspeed_config=str(REPO / config["finetune"]["deepspeed_config"]),
        num_threads=args.threads,
    )
    runs = []
    for by_length in (True, False):
        torch.manual_seed(SFT_SEED)
        model = ga.GenerativeAdapter(base_model, ga.GenerativeAdapterConfig.from_dict(config["adapter"]))
        runs.append(
            sft_run(
                name,
                model,
                train_records,
                val_records,
                cfg_values,
                args.sft_group_size,
                by_length,
                args.sft_steps,
                args.sft_warmup,
            )
        )
    return runs


def sft_gpu_bench(
    tokenizer_dir: Path, default: dict, args, spec_name: str = "mistral_7b", device_type: str = "cuda"
) -> list[dict]:
    """The Mistral-7B-shaped runs of the module docstring (ga/testing/throughput.py's model, FLOP count and trainer): each
    SVD method of --sft-svd, each with length-grouped and random batches."""
    spec = MODELS[spec_name]
    layout = dataclasses.replace(PAPER_LAYOUT, window=PAPER_SFT_WINDOW)
    device = torch.device(device_type)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    cfg_values = dict(
        default["finetune"],
        deepspeed_config=str(REPO / ZERO2_CONFIG),
        precision="bf16" if device.type == "cuda" else "fp32",
        gradient_checkpointing=True,
        num_threads=args.threads,
    )
    with tempfile.TemporaryDirectory() as tmp:
        train_records, val_records = embedded_sft_mixture(
            default, tokenizer_dir, Path(tmp) / "sft-paper", PAPER_SFT_WINDOW, PAPER_SFT_MAX_TOKENS
        )
        runs = [
            sft_gpu_run(spec, layout, svd, device, dtype, train_records, val_records, cfg_values, by_length, args)
            for svd in args.sft_svd.split(",")
            for by_length in (True, False)
        ]
    free_memory(device)
    return runs


def sft_gpu_run(
    spec, layout, svd: str, device, dtype, train_records, val_records, cfg_values: dict, by_length: bool, args
) -> dict:
    """One SVD method and batching of the GPU run, on a freshly built model (ga/testing/throughput.py's builder and
    FLOP count)."""
    free_memory(device)
    base = build_base(spec, device, dtype)
    adapter = ga.GenerativeAdapterConfig(
        inter_size=layout.inter_size,
        rank=layout.rank,
        target_modules=list(layout.target_modules),
        window=layout.window,
        svd=svd,
    )
    with torch.device(device):
        model = ga.GenerativeAdapter(base, adapter)
    run = sft_run(
        spec.description,
        model,
        train_records,
        val_records,
        cfg_values,
        args.sft_group_size,
        by_length,
        args.sft_steps,
        args.sft_warmup,
        vocab_size=spec.config["vocab_size"],
        flops=lambda positions, model=model: flops_per_step(model, layout, positions)["model_flops"],
        peak_flops=args.peak_tflops * TFLOP,
        trainer_class=ThroughputTrainer,
    )
    del model, base
    free_memory(device)
    return dict(run, svd=svd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6, help="timed optimizer steps per model")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (1: on shared cores more threads slow the batched SVDs down)",
    )
    parser.add_argument("--skip-smollm2", action="store_true", help="only the smoke config")
    parser.add_argument("--skip-pretrain", action="store_true", help="only the instruction-tuning runs")
    parser.add_argument("--skip-sft", action="store_true", help="no instruction-tuning runs")
    parser.add_argument("--sft-steps", type=int, default=4, help="timed finetune steps per run")
    parser.add_argument("--sft-warmup", type=int, default=1, help="untimed finetune steps first")
    parser.add_argument("--sft-group-size", type=int, default=4, help="records per micro-batch (one group)")
    parser.add_argument("--sft-smollm2", action="store_true", help="also the CPU SFT runs on SmolLM2-135M")
    parser.add_argument(
        "--sft-svd",
        default="lowrank,exact",
        help="comma-separated SVD methods of the GPU instruction-tuning runs, in run order",
    )
    parser.add_argument(
        "--peak-tflops", type=float, default=989.0, help="GPU peak for MFU (dense bf16 of an H100 SXM / H200)"
    )
    args = parser.parse_args()

    results = {"device": "cuda" if torch.cuda.is_available() else "cpu", "threads": args.threads}
    smoke = RunConfig.load(REPO / "config" / "smoke.yaml").to_dict()  # resolved: keys left at their defaults too
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(smoke["seed"])
    tiny = LlamaForCausalLM(LlamaConfig(**smoke["base_model"]["random_config"]))
    from ga.base import load_base
    from ga.smollm2 import embedded_model_dir

    default = RunConfig.load(REPO / "config" / "config.yaml").to_dict()
    if not args.skip_pretrain:
        results["smoke"] = bench("smoke (tiny random Llama)", tiny, smoke, args.steps, args.warmup, args.threads)
        if not args.skip_smollm2:
            base, _ = load_base(embedded_model_dir())
            results["smollm2_135m"] = bench(
                "SmolLM2-135M-Instruct, embedded default settings", base, default, args.steps, args.warmup, args.threads
            )
    if not args.skip_sft:
        tokenizer_dir = embedded_model_dir()  # SmolLM2's tokenizer: the smoke model shares its vocabulary
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            train_records, val_records = embedded_sft_mixture(
                default, tokenizer_dir, Path(tmp) / "sft", default["adapter"]["window"]
            )
            results["sft_mixture"] = {
                "train_records": len(train_records),
                "val_records": len(val_records),
                "window": train_records.window,
                "build_s": time.perf_counter() - start,
                "padding_token_share_within_windows": token_padding_share(train_records),
            }
            results["sft_smoke"] = sft_cpu_bench(
                "smoke (tiny random Llama)", tiny, smoke, train_records, val_records, args
            )
            if args.sft_smollm2:
                base, _ = load_base(embedded_model_dir())
                results["sft_smollm2_135m"] = sft_cpu_bench(
                    "SmolLM2-135M-Instruct, embedded default settings", base, default, train_records, val_records, args
                )
        for run in results["sft_smoke"] + results.get("sft_smollm2_135m", []):
            print(
                f"SFT {run['name']}, {run['batching']} batching: {run['tokens_per_s']:,.0f} real tokens/s, "
                f"{run['positions_per_s']:,.0f} positions/s, padding: {100 * run['padding_window_share']:.1f}% "
                f"of window slots, {100 * run['padding_token_share']:.1f}% of token positions",
                flush=True,
            )
        if torch.cuda.is_available():
            results["sft_gpu_mistral_7b"] = sft_gpu_bench(tokenizer_dir, default, args)
            for run in results["sft_gpu_mistral_7b"]:
                print(
                    f"SFT GPU {run['name']}, svd {run['svd']}, {run['batching']} batching: "
                    f"{run['tokens_per_s']:,.0f} real tokens/s, MFU {100 * run['mfu']:.1f}% "
                    f"(real tokens only: {100 * run['mfu_real_tokens']:.1f}%)",
                    flush=True,
                )
        else:
            print("SFT GPU run (Mistral-7B-shaped model) skipped: no CUDA device", flush=True)
            results["sft_gpu_mistral_7b"] = "skipped: no CUDA device"
    print(json.dumps(results))


if __name__ == "__main__":
    main()
