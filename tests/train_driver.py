"""Runs `ga.train.loop.train` on a tiny random Llama and pretraining examples of synthetic token streams (laid out by
the pipeline's example builder); used by the training tests as a subprocess (to be killed and resumed) and under
`torchrun --nproc_per_node 2`.

usage (in tests/): python -m train_driver STATE_DIR RESULT_JSON [--stage 0|2] [--steps N] [--checkpoint-every N]
                                                 [--micro N] [--accum N] [--seed N]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from tiny_models import VOCAB, tiny_base  # from the current folder, tests/: run as `python -m train_driver` there

import ga
from ga.testing.train_data import synthetic_pretrain_set
from ga.train import PretrainObjective, TrainConfig
from ga.train.loop import train

REPO = Path(__file__).resolve().parents[1]
N_COMPLETION, WINDOW = 2, 16


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("state", type=Path)
    parser.add_argument("result", type=Path)
    parser.add_argument("--stage", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--checkpoint-every", type=int, default=3)
    parser.add_argument("--micro", type=int, default=1)
    parser.add_argument("--accum", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    model = ga.GenerativeAdapter(
        tiny_base("llama", seed=args.seed), ga.GenerativeAdapterConfig(inter_size=16, rank=4, alpha=16, window=WINDOW)
    )
    examples = synthetic_pretrain_set(24, N_COMPLETION, WINDOW, VOCAB, seed=args.seed)
    cfg = TrainConfig(
        steps=args.steps,
        micro_batch_size=args.micro,
        grad_accum_steps=args.accum,
        lr=1e-2,
        warmup_steps=2,
        checkpoint_every=args.checkpoint_every,
        eval_every=0,
        num_threads=1,
        deepspeed_config=str(REPO / f"resources/deepspeed/zero{args.stage}.json"),
    )
    result = train(
        model,
        PretrainObjective(N_COMPLETION),
        examples[:20],
        examples[20:],
        cfg,
        args.state,
        seed=args.seed,
        fingerprint={"driver": vars(args) | {"state": None, "result": None}},
    )
    if torch.distributed.get_rank() == 0:
        args.result.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
