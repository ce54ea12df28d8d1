"""Core benchmark: generator training step vs a static LoRA step, SVDs per step, SVD modes, and window-merge memory.

    python benchmarks/core.py [--layers 30] [--windows 4] [--window 64] [--inter-size 128] [--rank 32] [--steps 3]
                              [--threads 1] [--svd-inter-size 1024] [--svd-rank 128]

Training steps run side by side in one process on the same tokens and the same SmolLM2-135M-shaped base (random
weights: the shape decides the cost), for two window layouts: --windows windows each adapted by all before it, and
the embedded default's pretraining layout (config/config.yaml: 8 completion + 8 reconstruction windows, prefixes
[0 .. 7, 1 .. 8]). The generator step is timed twice: normalizing each distinct prefix once (the model's path) and
every window's merged state (`normalize_each_window`, the path before), with the SVDs each one runs per step,
counted by the profiler. The normalization of one adapted layer of that layout (its distinct states, forward and
backward) is timed for `svd: exact` and `svd: lowrank` at the paper's d_r and r. Times are this process's CPU
seconds with one torch thread (the default; other load on shared cores does not count), wall seconds with more.
The merge memory is measured in fresh subprocesses (peak RSS growth over the input states) for the S x S expansion
of the authors' code and for our prefix sums. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import statistics
import subprocess
import sys
import time

import torch

SMOLLM2_135M = dict(
    vocab_size=49152,
    hidden_size=576,
    intermediate_size=1536,
    num_hidden_layers=30,
    num_attention_heads=9,
    num_key_value_heads=3,
    max_position_embeddings=2048,
    tie_word_embeddings=True,
)
# The embedded default's pretraining layout (config/config.yaml, pretrain_data).
EMBEDDED_COMPLETION_WINDOWS = 8
EMBEDDED_RECONSTRUCTION_WINDOWS = 8
EMBEDDED_WINDOW = 64


def smollm2_shaped_base(layers: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(**{**SMOLLM2_135M, "num_hidden_layers": layers})
    return LlamaForCausalLM(config).train()


def pretrain_prefix(completion: int, reconstruction: int) -> torch.Tensor:
    """Completion window i is adapted by windows < i, reconstruction window j by windows <= j
    (docs/method.md#window-layout)."""
    return torch.tensor(list(range(completion)) + list(range(1, reconstruction + 1)))


def svds_in(step) -> int:
    """Matrices decomposed by torch.linalg.svd during one call of `step` (a batched call counts its batch)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True) as profile:
        step()
    return sum(math.prod(event.input_shapes[0][:-2]) for event in profile.events() if event.name == "aten::_linalg_svd")


def step_clock():
    """With one torch thread, this process's CPU time: on shared cores other processes' load does not count, so it
    estimates the wall time on idle cores. With more threads, wall time (CPU time would add up the threads)."""
    return time.process_time if torch.get_num_threads() == 1 else time.perf_counter


def median_times(steps: dict, repeats: int) -> dict[str, float]:
    """Median seconds of each step; the steps take turns, so drift in machine load hits all of them alike."""
    clock = step_clock()
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = clock()
            step()
            times[name].append(clock() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def training_step_times(args, gam, lora_model, ids: torch.Tensor, prefix: torch.Tensor | None) -> dict:
    """GA step time with one normalization per distinct prefix and per window, LoRA step time, SVDs per step."""
    gam_optimizer = torch.optim.AdamW(gam.generator_parameters(), lr=1e-4)
    lora_optimizer = torch.optim.AdamW([p for p in lora_model.parameters() if p.requires_grad], lr=1e-4)
    batch, windows, length = ids.shape
    flat = ids.view(batch * windows, length)

    def ga_step(each_window: bool):
        def step():
            gam.normalize_each_window = each_window
            gam_optimizer.zero_grad(set_to_none=True)
            gam(ids, labels=ids, adapter_prefix=prefix).loss.backward()
            gam_optimizer.step()

        return step

    def lora_step():
        lora_optimizer.zero_grad(set_to_none=True)
        lora_model(input_ids=flat, labels=flat).loss.backward()
        lora_optimizer.step()

    steps = {"distinct": ga_step(False), "per_window": ga_step(True), "lora": lora_step}
    svds = {"distinct": svds_in(steps["distinct"]), "per_window": svds_in(steps["per_window"])}  # also the warm-up
    lora_step()
    seconds = median_times(steps, args.steps)
    return {
        "windows": windows,
        "svds": svds,
        "ga_step_s": seconds["distinct"],
        "ga_step_s_per_window_svd": seconds["per_window"],
        "lora_step_s": seconds["lora"],
    }


def normalization_times(args) -> dict[str, float]:
    """Seconds to normalize one adapted layer's distinct states of the embedded layout, forward and backward,
    under `svd: exact` and `svd: lowrank`."""
    import ga
    from ga.normalize import normalize_state

    d_r = args.svd_inter_size
    generator = torch.Generator().manual_seed(0)
    # the merged state of prefix k sums k windows of tokens: rank k * window, below d_r for short prefixes
    states = []
    for prefix in range(1, EMBEDDED_COMPLETION_WINDOWS + 1):
        keys, values = torch.randn(2, prefix * EMBEDDED_WINDOW, d_r, generator=generator)
        states.append(keys.T @ values)
    states = torch.stack(states)
    upstream = torch.randn(states.shape, generator=generator)

    def normalize_and_backward(config):
        state = states.clone().requires_grad_(True)
        (normalize_state(state, config) * upstream).sum().backward()

    steps = {
        mode: functools.partial(
            normalize_and_backward, ga.GenerativeAdapterConfig(inter_size=d_r, rank=args.svd_rank, svd=mode)
        )
        for mode in ("exact", "lowrank")
    }
    for step in steps.values():
        step()  # warm-up
    return median_times(steps, args.steps)


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
    parser.add_argument("--window", type=int, default=EMBEDDED_WINDOW)
    parser.add_argument("--inter-size", type=int, default=128)
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the embedded default trains on 1)")
    parser.add_argument("--svd-inter-size", type=int, default=1024, help="d_r of the SVD-mode timing (the paper's)")
    parser.add_argument("--svd-rank", type=int, default=128, help="r of the SVD-mode timing (the paper's)")
    parser.add_argument("--merge-windows", type=int, default=16)
    parser.add_argument("--merge-inter-size", type=int, default=1024)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    # Before the models are built: a child process starts with the peak RSS of its parent (Linux keeps it across
    # fork and exec), which would hide the growth being measured.
    expansion = merge_peak_bytes("expansion", args.merge_windows, args.merge_inter_size)
    prefix_sums = merge_peak_bytes("prefix", args.merge_windows, args.merge_inter_size)
    merge_memory = {
        "merge_windows": args.merge_windows,
        "merge_inter_size": args.merge_inter_size,
        "merge_peak_bytes_expansion": expansion,
        "merge_peak_bytes_prefix_sum": prefix_sums,
        "merge_memory_ratio": round(expansion / max(prefix_sums, 1), 2),
    }

    from peft import LoraConfig, get_peft_model

    import ga

    config = ga.GenerativeAdapterConfig(
        inter_size=args.inter_size, rank=args.rank, alpha=64, target_modules=["o_proj"], window=args.window
    )
    gam = ga.GenerativeAdapter(smollm2_shaped_base(args.layers), config).train()
    lora_model = get_peft_model(
        smollm2_shaped_base(args.layers),
        LoraConfig(r=args.rank, lora_alpha=64, target_modules=["o_proj"], lora_dropout=0.0),
    ).train()
    generator = torch.Generator().manual_seed(0)
    embedded_windows = EMBEDDED_COMPLETION_WINDOWS + EMBEDDED_RECONSTRUCTION_WINDOWS
    layouts = {  # JSON key suffix: (tokens, adapter prefix)
        "": (torch.randint(0, SMOLLM2_135M["vocab_size"], (1, args.windows, args.window), generator=generator), None),
        "_embedded_layout": (
            torch.randint(0, SMOLLM2_135M["vocab_size"], (1, embedded_windows, EMBEDDED_WINDOW), generator=generator),
            pretrain_prefix(EMBEDDED_COMPLETION_WINDOWS, EMBEDDED_RECONSTRUCTION_WINDOWS),
        ),
    }
    result = {
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "clock": "process_cpu" if step_clock() is time.process_time else "wall",
        "base_shape": f"SmolLM2-135M ({args.layers} layers)",
        "inter_size": args.inter_size,
        "rank": args.rank,
    }
    for suffix, (ids, prefix) in layouts.items():
        timed = training_step_times(args, gam, lora_model, ids, prefix)
        ga_s, before_s, lora_s = timed["ga_step_s"], timed["ga_step_s_per_window_svd"], timed["lora_step_s"]
        prefixes = "all windows before" if prefix is None else prefix.tolist()
        print(
            f"layout {timed['windows']} windows of {ids.shape[-1]}, prefixes {prefixes}: SVDs/step {timed['svds']['per_window']} -> {timed['svds']['distinct']}; "
            f"GA step {before_s:.3f} s -> {ga_s:.3f} s; LoRA step {lora_s:.3f} s; "
            f"GA/LoRA {before_s / lora_s:.3f} -> {ga_s / lora_s:.3f}",
            flush=True,
        )
        result.update(
            {
                f"tokens_per_step{suffix}": ids[0].numel(),
                f"svds_per_step{suffix}": timed["svds"]["distinct"],
                f"svds_per_step{suffix}_per_window_svd": timed["svds"]["per_window"],
                f"ga_step_s{suffix}": round(ga_s, 4),
                f"ga_step_s{suffix}_per_window_svd": round(before_s, 4),
                f"lora_step_s{suffix}": round(lora_s, 4),
                f"ga_over_lora_step_time{suffix}": round(ga_s / lora_s, 3),
                f"ga_over_lora_step_time{suffix}_per_window_svd": round(before_s / lora_s, 3),
            }
        )

    normalize_s = normalization_times(args)
    print(
        f"normalizing one layer's {EMBEDDED_COMPLETION_WINDOWS} distinct states at d_r {args.svd_inter_size}, "
        f"r {args.svd_rank} (forward + backward): exact {normalize_s['exact']:.3f} s, "
        f"lowrank {normalize_s['lowrank']:.3f} s",
        flush=True,
    )
    result.update(
        {
            "svd_inter_size": args.svd_inter_size,
            "svd_rank": args.svd_rank,
            "normalize_layer_s_exact": round(normalize_s["exact"], 4),
            "normalize_layer_s_lowrank": round(normalize_s["lowrank"], 4),
        }
    )

    result.update(merge_memory)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
