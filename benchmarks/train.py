"""Training-loop benchmark (issue "pretrain the generator"): tokens/s and optimizer-step time of the real DeepSpeed
loop (ga.train.loop.train) for the smoke config and for SmolLM2-135M-Instruct with the embedded default's settings.

    python benchmarks/train.py [--steps 6] [--warmup 2] [--threads 1] [--skip-smollm2]

Examples have the configs' pretraining layout (ga.data.pretrain.build_examples on random token sequences: the cost
depends on shapes, not content). The first --warmup steps are excluded from the timings. Both runs share one
process, side by side. The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import ga  # noqa: E402
from ga.data.pretrain import build_examples, examples_to_tensors  # noqa: E402
from ga.data.config import WindowLayout  # noqa: E402
from ga.train import PretrainObjective, TrainConfig  # noqa: E402
from ga.train.loop import train  # noqa: E402
from ga.train.objective import MODEL_INPUT_KEYS  # noqa: E402


def layout_examples(config: dict, vocab_size: int, count: int, seed: int) -> list[dict]:
    """`count` examples of the config's layout, as the training loop takes them."""
    section = config["pretrain_data"]
    layout = WindowLayout(section["window"], section["completion_windows"], section["reconstruction_windows"])
    rng = np.random.default_rng(seed)
    sequences = rng.integers(0, vocab_size, size=(count, layout.seq_len), dtype=np.int32)
    tensors = examples_to_tensors(build_examples(sequences, 0, layout, seed, "train", pad_id=0), layout)
    return [{key: tensors[key][i] for key in MODEL_INPUT_KEYS} for i in range(count)]


def bench(name: str, base_model, config: dict, steps: int, warmup: int, threads: int) -> dict:
    cfg_values = dict(config["pretrain"], steps=warmup + steps, eval_every=0, val_examples=2,
                      checkpoint_every=10**9, num_threads=threads)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6, help="timed optimizer steps per model")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1: on shared cores more threads slow the batched SVDs down)")
    parser.add_argument("--skip-smollm2", action="store_true", help="only the smoke config")
    args = parser.parse_args()

    results = {"device": "cuda" if torch.cuda.is_available() else "cpu", "threads": args.threads}
    smoke = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(smoke["seed"])
    tiny = LlamaForCausalLM(LlamaConfig(**smoke["base_model"]["random_config"]))
    results["smoke"] = bench("smoke (tiny random Llama)", tiny, smoke, args.steps, args.warmup, args.threads)
    if not args.skip_smollm2:
        from ga.base import load_base
        from ga.smollm2 import embedded_model_dir

        default = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
        base, _ = load_base(embedded_model_dir())
        results["smollm2_135m"] = bench("SmolLM2-135M-Instruct, embedded default settings", base, default,
                                        args.steps, args.warmup, args.threads)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
