"""Core benchmark: generator training step vs a static LoRA step, and window-merge memory (issue "ga core").

    python benchmarks/core.py [--layers 30] [--windows 4] [--window 64] [--inter-size 128] [--rank 32] [--steps 3]

Both training steps run side by side in one process on the same tokens and the same SmolLM2-135M-shaped base
(random weights: the shape decides the cost). The merge memory is measured in fresh subprocesses (peak RSS growth
over the input states) for the S x S expansion of the authors' code and for our prefix sums. The last line
printed is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch

SMOLLM2_135M = dict(
    vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
    num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=2048, tie_word_embeddings=True,
)


def smollm2_shaped_base(layers: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(**{**SMOLLM2_135M, "num_hidden_layers": layers})
    return LlamaForCausalLM(config).train()


def time_steps(step, steps: int) -> list[float]:
    step()  # warm-up
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def training_step_times(args) -> dict:
    from peft import LoraConfig, get_peft_model

    import ga

    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, SMOLLM2_135M["vocab_size"], (1, args.windows, args.window), generator=generator)
    config = ga.GenerativeAdapterConfig(
        inter_size=args.inter_size, rank=args.rank, alpha=64, target_modules=["o_proj"], window=args.window
    )
    gam = ga.GenerativeAdapter(smollm2_shaped_base(args.layers), config).train()
    gam_optimizer = torch.optim.AdamW(gam.generator_parameters(), lr=1e-4)

    def ga_step():
        gam_optimizer.zero_grad(set_to_none=True)
        gam(ids, labels=ids).loss.backward()
        gam_optimizer.step()

    lora_model = get_peft_model(
        smollm2_shaped_base(args.layers),
        LoraConfig(r=args.rank, lora_alpha=64, target_modules=["o_proj"], lora_dropout=0.0),
    ).train()
    lora_optimizer = torch.optim.AdamW([p for p in lora_model.parameters() if p.requires_grad], lr=1e-4)
    flat = ids.view(args.windows, args.window)

    def lora_step():
        lora_optimizer.zero_grad(set_to_none=True)
        lora_model(input_ids=flat, labels=flat).loss.backward()
        lora_optimizer.step()

    ga_times, lora_times = [], []
    for _ in range(args.steps):  # interleave so drift in machine load hits both alike
        ga_times += time_steps(ga_step, 1)
        lora_times += time_steps(lora_step, 1)
    ga_time, lora_time = statistics.median(ga_times), statistics.median(lora_times)
    return {
        "ga_step_s": round(ga_time, 4),
        "lora_step_s": round(lora_time, 4),
        "ga_over_lora_step_time": round(ga_time / lora_time, 3),
    }


MERGE_CHILD = r"""
import resource, sys, torch
from ga.model import merge_prefix_states
mode, windows, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(1)
states = torch.randn(1, windows, d, d)
prefix = torch.arange(windows).unsqueeze(0)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if mode == "expansion":
    # the authors' merge: an S x S source mask times every window's state, then a sum
    sources = (torch.arange(windows)[None, :] < prefix[0][:, None]).float()
    merged = (sources[None, :, :, None, None] * states[:, None]).sum(dim=2)
else:
    merged, total = merge_prefix_states(states, prefix)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) * 1024)
"""


def merge_peak_bytes(mode: str, windows: int, d: int) -> int:
    out = subprocess.run(
        [sys.executable, "-c", MERGE_CHILD, mode, str(windows), str(d)], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=SMOLLM2_135M["num_hidden_layers"])
    parser.add_argument("--windows", type=int, default=4)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--inter-size", type=int, default=128)
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--merge-windows", type=int, default=16)
    parser.add_argument("--merge-inter-size", type=int, default=1024)
    args = parser.parse_args()

    expansion = merge_peak_bytes("expansion", args.merge_windows, args.merge_inter_size)
    prefix_sums = merge_peak_bytes("prefix", args.merge_windows, args.merge_inter_size)
    result = {
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "base_shape": f"SmolLM2-135M ({args.layers} layers)",
        "tokens_per_step": args.windows * args.window,
        "inter_size": args.inter_size,
        "rank": args.rank,
        **training_step_times(args),
        "merge_windows": args.merge_windows,
        "merge_inter_size": args.merge_inter_size,
        "merge_peak_bytes_expansion": expansion,
        "merge_peak_bytes_prefix_sum": prefix_sums,
        "merge_memory_ratio": round(expansion / max(prefix_sums, 1), 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
