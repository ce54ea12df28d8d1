"""GPU check of pretraining throughput: bf16 ZeRO-2 steps of the real training loop on one CUDA GPU.

    python benchmarks/gpu.py [--models smollm2_135m,mistral_7b] [--svd lowrank,exact] [--steps 3] [--warmup 1]
                             [--micro-batch 1] [--peak-tflops 989] [--time-budget-s 400]
    python benchmarks/gpu.py --tiny      # CPU, tiny shapes, fp32, one step: exercises this script anywhere

What runs
---------
Base models with random weights (nothing is downloaded; the cost depends on shapes, not values), built directly in
bf16 on the GPU so that a 7B model never sits in fp32 on the host:
  smollm2_135m  a SmolLM2-135M-shaped Llama (hidden 576, 30 layers, 9 heads / 3 kv heads, vocab 49152)
  mistral_7b    a Mistral-7B-shaped model (hidden 4096, 32 layers, 32 heads / 8 kv heads, intermediate 14336,
                vocab 32000)
Each gets a generator at the paper's layout (d_r 1024, r 128, o_proj) and trains through the loop's own
`Trainer` (ga/train/loop.py: DeepSpeed engine, ZeRO-2 from resources/deepspeed/zero2.json, bf16, gradient
checkpointing on) with `PretrainObjective` on examples laid out by `ga.data.pretrain.build_examples` +
`examples_to_tensors` (window 1024, 8 completion + 8 reconstruction windows; random token ids). It is the loop
that `ga.train.loop.train` runs, minus its end-of-run validation (8 more forward passes) and checkpoint write (GBs
of optimizer state for 7B): neither is training throughput, and both would eat the GPU time. `--full-loop` calls
`ga.train.loop.train` itself instead. Each (model, SVD method) pair is one run; the first --warmup steps are not
timed, the reported numbers are medians over the --steps timed steps.

What is reported, per run
-------------------------
  tokens/s       the loop's own count: real (unpadded) tokens per second of optimizer step
  positions/s    all B x S x L positions the model computes (reconstruction windows end in padding)
  MFU            model FLOPs per step / step time / peak (see below); goal: MFU >= 40% on an H100/H200
  HFU            the same with the recompute of gradient checkpointing counted
  peak memory    torch.cuda.max_memory_allocated over the run (peak resident memory on CPU)
plus, once, exact-vs-lowrank SVD time: `ga.normalize.normalize_state` on a batch of random d_r x d_r float32 states
(one layer's states of one step at the paper layout: S = 16 windows) with `svd: exact` and `svd: lowrank`, forward
alone and forward + backward, and from it each run's estimated SVD time per step.

FLOP count (per optimizer step; T = positions per step = micro batch x accumulation x S x L)
-----------------------------------------------------------------------------------------
  N     weights of the base model's matrix multiplies: the linear maps of its decoder layers (q, k, v, o, gate, up,
        down) plus the LM head (the embedding lookup does no arithmetic).
  A     attention matmul FLOPs of one forward: 2 * n_layers * d_attn * (L + 1) * T. QK^T and PV are two multiply-
        accumulates (2 FLOPs each) per query, key and attention channel; attention is causal inside each window, so
        a query sees (L + 1) / 2 keys on average. d_attn = heads x head_dim.
  G     generator forward FLOPs: T * sum over adapted maps of [4 d_h d_r (keys A2, values A3)
        + 2 d_r^2 (state += k v^T) + 2 d_in d_r (A1 x) + 2 d_r^2 (. N) + 2 d_r d_out (B)].
  model FLOPs = 4 N T + 3 A + 3 G.
        The base model is frozen: its backward computes activation gradients (one matmul per linear map, 2 N T,
        which carry the loss's gradient down to every layer's generator) but no weight gradients, so the base costs
        4 N T, not the 6 N T of full training. Attention's backward is twice its forward (dQ, dK, dV and dP, all
        activations), hence 3 A. The generator trains: forward, activation and weight gradients, hence 3 G.
  recompute = 2 N_layers T + A + G_delta: gradient checkpointing replays every decoder layer's forward in backward
        (N_layers = N without the LM head), with the o_proj hook's delta path (A1 x, . N, B) but not the context
        side (A2, A3, k v^T), which runs in the layer's pre-hook outside the checkpointed forward.
  MFU = model FLOPs / step time / peak; HFU = (model FLOPs + recompute) / step time / peak. MFU conventionally
        leaves the recompute out: it is overhead of a memory trade, not work the model needs.
  Not counted (in neither): the SVDs/QRs of the normalization and their backward (timed separately), norms,
        softmax, RoPE, the cross-entropy and the optimizer.
  peak: 989 TFLOP/s, the dense (no sparsity) bf16 tensor-core peak of an H100 SXM / H200; --peak-tflops overrides.

The last line printed is one JSON object with every number.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import ga
from ga.config import GenerativeAdapterConfig
from ga.data.config import WindowLayout
from ga.data.pretrain import build_examples, examples_to_tensors
from ga.normalize import normalize_state
from ga.testing.throughput import (
    FLOP_FORMULA,
    MODELS,
    PAPER_LAYOUT,
    SEED,
    TFLOP,
    TINY_LAYOUT,
    ZERO2_CONFIG,
    Layout,
    ModelSpec,
    ThroughputTrainer,
    build_base,
    flops_per_step,
    free_memory,
)
from ga.train import PretrainObjective, TrainConfig
from ga.train.loop import train
from ga.train.objective import MODEL_INPUT_KEYS

REPO = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------------------------------- constants
H100_H200_BF16_DENSE_PEAK_TFLOPS = 989.0
"""Dense bf16 tensor-core peak of an H100 SXM and an H200 (NVIDIA data sheets; the 1979 figure assumes sparsity)."""
MFU_GOAL = 0.40
"""Target model FLOPs utilization of pretraining on an H100/H200."""
VAL_EXAMPLES = 2
"""Held-out examples given to the loop: the fewest it accepts (its validation needs an other-context donor)."""
NEVER = 10**9
"""checkpoint_every for a run that should write no periodic checkpoint."""

SVD_METHODS = ("lowrank", "exact")
"""Default training runs: lowrank first (cheap), then exact (the config default), each skipped if out of time."""


# ---------------------------------------------------------------------------------------------------- SVD timing
def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn, device: torch.device, repeats: int) -> float:
    fn()  # warm-up: solver handles, workspaces, kernel selection
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def svd_bench(layout: Layout, batch: int, repeats: int, device: torch.device) -> dict:
    """Seconds of `normalize_state` on `batch` random d_r x d_r float32 states, exact vs lowrank, forward alone and
    forward + backward (a random upstream gradient)."""
    generator = torch.Generator().manual_seed(SEED)
    shape = (batch, layout.inter_size, layout.inter_size)
    states = torch.randn(shape, generator=generator).to(device)
    upstream = torch.randn(shape, generator=generator).to(device)
    result = {"inter_size": layout.inter_size, "rank": layout.rank, "batch": batch, "repeats": repeats}
    for method in SVD_METHODS:
        config = GenerativeAdapterConfig(inter_size=layout.inter_size, rank=layout.rank, svd=method)

        def forward(config=config):  # bound now: the loop rebinds `config`
            with torch.no_grad():
                normalize_state(states, config)

        def forward_backward(config=config):
            leaf = states.detach().requires_grad_(True)
            (normalize_state(leaf, config) * upstream).sum().backward()

        fwd = median_seconds(forward, device, repeats)
        fwd_bwd = median_seconds(forward_backward, device, repeats)
        result[method] = {"fwd_s": fwd, "fwd_bwd_s": fwd_bwd, "fwd_bwd_s_per_state": fwd_bwd / batch}
    result["exact_over_lowrank_fwd_bwd"] = result["exact"]["fwd_bwd_s"] / result["lowrank"]["fwd_bwd_s"]
    return result


# ---------------------------------------------------------------------------------------------------- training runs
def layout_examples(layout: Layout, vocab_size: int, count: int) -> list[dict]:
    """`count` pretraining examples of random token ids, laid out as the data pipeline stores them."""
    window_layout = WindowLayout(layout.window, layout.completion_windows, layout.reconstruction_windows)
    rng = np.random.default_rng(SEED)
    sequences = rng.integers(0, vocab_size, size=(count, window_layout.seq_len), dtype=np.int32)
    frame = build_examples(sequences, 0, window_layout, SEED, "train", pad_id=0)
    tensors = examples_to_tensors(frame, window_layout)
    return [{key: tensors[key][i] for key in MODEL_INPUT_KEYS} for i in range(count)]


def train_run(spec: ModelSpec, svd: str, layout: Layout, args, device: torch.device, dtype: torch.dtype) -> dict:
    """One (model, SVD method) run of the training loop; returns its timings, FLOPs and memory."""
    free_memory(device)
    build_start = time.perf_counter()
    base = build_base(spec, device, dtype)
    adapter = GenerativeAdapterConfig(
        inter_size=layout.inter_size,
        rank=layout.rank,
        target_modules=list(layout.target_modules),
        window=layout.window,
        svd=svd,
    )
    with torch.device(device):
        model = ga.GenerativeAdapter(base, adapter)
    build_s = time.perf_counter() - build_start

    cfg = TrainConfig(
        steps=args.warmup + args.steps,
        micro_batch_size=args.micro_batch,
        grad_accum_steps=args.grad_accum,
        warmup_steps=0,
        decay="constant",
        eval_every=0,
        val_examples=VAL_EXAMPLES,
        checkpoint_every=NEVER,
        deepspeed_config=str(REPO / ZERO2_CONFIG),
        precision="fp32" if args.tiny else "bf16",
        gradient_checkpointing=True,
        num_threads=args.threads,
    )
    n_train = cfg.micro_batch_size * cfg.grad_accum_steps * cfg.steps
    examples = layout_examples(layout, spec.config["vocab_size"], n_train + VAL_EXAMPLES)
    train_set = [examples[i] for i in range(n_train)]
    val_set = [examples[i] for i in range(n_train, n_train + VAL_EXAMPLES)]
    objective = PretrainObjective(layout.completion_windows)

    with tempfile.TemporaryDirectory() as state:
        if args.full_loop:
            result = train(model, objective, train_set, val_set, cfg, Path(state), seed=SEED)
        else:
            trainer = ThroughputTrainer(model, objective, train_set, val_set, cfg, Path(state), seed=SEED)
            result = trainer.run()
            if hasattr(trainer.engine, "destroy"):
                trainer.engine.destroy()
            del trainer
        rows = [json.loads(line) for line in (Path(state) / "metrics.jsonl").read_text().splitlines()]
    timed = [r for r in rows if r["kind"] == "train"][args.warmup :]

    positions = cfg.micro_batch_size * cfg.grad_accum_steps * layout.windows * layout.window
    flops = flops_per_step(model, layout, positions)
    step_time = statistics.median(r["step_time_s"] for r in timed)
    peak = args.peak_tflops * TFLOP
    states_per_step = cfg.micro_batch_size * cfg.grad_accum_steps * layout.windows * len(model.module_names)
    out = {
        "model": spec.name,
        "description": spec.description,
        "svd": svd,
        "tokens_per_s": statistics.median(r["tokens_per_s"] for r in timed),
        "positions_per_s": positions / step_time,
        "step_time_s": step_time,
        "tokens_per_step": timed[0]["tokens"],
        "positions_per_step": positions,
        "model_tflop_per_step": flops["model_flops"] / TFLOP,
        "recompute_tflop_per_step": flops["recompute_flops"] / TFLOP,
        "mfu": flops["model_flops"] / step_time / peak,
        "hfu": (flops["model_flops"] + flops["recompute_flops"]) / step_time / peak,
        "peak_mem_gib": max(r["mem_gib"] for r in timed),
        "peak_reserved_gib": torch.cuda.max_memory_reserved(device) / 2**30 if device.type == "cuda" else None,
        "losses": [r["loss"] for r in rows if r["kind"] == "train"],
        "skipped_steps": result["skipped_steps"],
        "timed_steps": len(timed),
        "warmup_steps": args.warmup,
        "svd_states_per_step": states_per_step,
        "trainable_parameters": result["trainable_parameters"],
        "frozen_parameters": result["frozen_parameters"],
        "base_matmul_weights": flops["base_matmul_weights"],
        "zero_stage": result["zero_stage"],
        "bf16": result["bf16"],
        "gradient_checkpointing": cfg.gradient_checkpointing,
        "micro_batch_size": cfg.micro_batch_size,
        "grad_accum_steps": cfg.grad_accum_steps,
        "build_s": build_s,
    }
    del model, base
    free_memory(device)
    return out


# ---------------------------------------------------------------------------------------------------- report
def print_run(run: dict, svd_result: dict | None, peak_tflops: float) -> None:
    name = f"{run['model']} / svd {run['svd']}"
    if "error" in run or "skipped" in run:
        print(f"== {name}: {run.get('error') or 'skipped: ' + run['skipped']}", flush=True)
        return
    print(
        f"== {name} ({run['description']}; trainable {run['trainable_parameters']:,}, "
        f"frozen {run['frozen_parameters']:,})"
    )
    print(
        f"   tokens/s {run['tokens_per_s']:,.0f} (real tokens)   positions/s {run['positions_per_s']:,.0f}   "
        f"step {run['step_time_s']:.3f} s   losses {[round(x, 3) for x in run['losses']]}"
    )
    print(
        f"   MFU {100 * run['mfu']:.3g}% ({run['model_tflop_per_step']:.4g} TFLOP/step against {peak_tflops:g} "
        f"TFLOP/s peak)   HFU {100 * run['hfu']:.3g}% (+{run['recompute_tflop_per_step']:.4g} TFLOP recompute)"
    )
    print(f"   peak memory {run['peak_mem_gib']:.2f} GiB")
    if svd_result is not None and "svd_s_per_step_est" in run:
        print(
            f"   SVD ({run['svd_states_per_step']} states/step): est. {run['svd_s_per_step_est']:.3f} s/step "
            f"= {100 * run['svd_share_of_step_est']:.0f}% of the step"
        )
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="CPU, tiny shapes, fp32, one step (exercises the script)")
    parser.add_argument("--models", default=None, help="comma-separated, from: " + ", ".join(MODELS))
    parser.add_argument("--svd", default=",".join(SVD_METHODS), help="training runs' SVD methods, in run order")
    parser.add_argument("--steps", type=int, default=None, help="timed optimizer steps per run (default 3; tiny 1)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 1; tiny 0)")
    parser.add_argument("--micro-batch", type=int, default=1, help="examples per forward pass")
    parser.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step")
    parser.add_argument(
        "--peak-tflops",
        type=float,
        default=H100_H200_BF16_DENSE_PEAK_TFLOPS,
        help="bf16 dense peak of the GPU, TFLOP/s (default: H100 SXM / H200)",
    )
    parser.add_argument("--svd-repeats", type=int, default=None, help="timed repeats of the SVD bench (3; tiny 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's; tiny 1)")
    parser.add_argument(
        "--time-budget-s",
        type=float,
        default=400.0,
        help="start no run whose estimated SVD time alone would end it after this many seconds",
    )
    parser.add_argument(
        "--full-loop",
        action="store_true",
        help="call ga.train.loop.train (adds its end-of-run validation and checkpoint write)",
    )
    args = parser.parse_args()
    start = time.perf_counter()

    if args.tiny:
        layout, device, dtype = TINY_LAYOUT, torch.device("cpu"), torch.float32
        default_models, default_steps, default_warmup, default_repeats = "tiny_llama,tiny_mistral", 1, 0, 1
        args.threads = args.threads or 1
    else:
        if not torch.cuda.is_available():
            sys.exit("benchmarks/gpu.py: no CUDA GPU (use --tiny on CPU)")
        layout, device, dtype = PAPER_LAYOUT, torch.device("cuda", 0), torch.bfloat16
        default_models, default_steps, default_warmup, default_repeats = "smollm2_135m,mistral_7b", 3, 1, 3
    args.steps = default_steps if args.steps is None else args.steps
    args.warmup = default_warmup if args.warmup is None else args.warmup
    repeats = default_repeats if args.svd_repeats is None else args.svd_repeats
    if args.threads:
        torch.set_num_threads(args.threads)
    models = [MODELS[name] for name in (args.models or default_models).split(",")]
    methods = args.svd.split(",")
    if not set(methods) <= set(SVD_METHODS):
        parser.error(f"--svd: choose from {SVD_METHODS}")

    import deepspeed
    import transformers

    results = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "tiny": args.tiny,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "deepspeed": deepspeed.__version__,
        "dtype": str(dtype).removeprefix("torch."),
        "zero_config": ZERO2_CONFIG,
        "peak_tflops": args.peak_tflops,
        "mfu_goal": MFU_GOAL,
        "flop_formula": FLOP_FORMULA,
        "layout": {
            "window": layout.window,
            "completion_windows": layout.completion_windows,
            "reconstruction_windows": layout.reconstruction_windows,
            "inter_size": layout.inter_size,
            "rank": layout.rank,
            "target_modules": list(layout.target_modules),
        },
        "steps": args.steps,
        "warmup": args.warmup,
        "micro_batch": args.micro_batch,
        "grad_accum": args.grad_accum,
        "full_loop": args.full_loop,
    }
    print(
        f"GPU check: {results['device']} | torch {torch.__version__} | transformers {transformers.__version__} | "
        f"deepspeed {deepspeed.__version__} | {results['dtype']} ZeRO-2 | layout {results['layout']}"
    )
    print(f"FLOP count: {FLOP_FORMULA}")
    print(
        f"Goal: MFU >= {100 * MFU_GOAL:.0f}% on an H100/H200 (peak {args.peak_tflops:g} TFLOP/s bf16 dense)", flush=True
    )

    # One layer's states of one step (micro-batch x windows) at this layout.
    svd_batch = args.micro_batch * layout.windows
    try:
        svd_result = svd_bench(layout, svd_batch, repeats, device)
        print(
            f"== SVD normalization, {svd_batch} states of {layout.inter_size}x{layout.inter_size}, r "
            f"{layout.rank}: "
            + "   ".join(
                f"{m}: fwd {1e3 * svd_result[m]['fwd_s']:.1f} ms, fwd+bwd {1e3 * svd_result[m]['fwd_bwd_s']:.1f} ms"
                for m in SVD_METHODS
            )
            + f"   (exact / lowrank = {svd_result['exact_over_lowrank_fwd_bwd']:.1f}x)",
            flush=True,
        )
    except Exception as err:  # keep going: the training runs are still worth having
        svd_result = {"error": f"{type(err).__name__}: {err}"}
        print(f"== SVD normalization: {svd_result['error']}", flush=True)
    results["svd_bench"] = svd_result

    runs = []
    for method in methods:
        for spec in models:
            run = {"model": spec.name, "description": spec.description, "svd": method}
            elapsed = time.perf_counter() - start
            per_state = svd_result.get(method, {}).get("fwd_bwd_s_per_state")
            states_per_step = (
                args.micro_batch
                * args.grad_accum
                * layout.windows
                * spec.config["num_hidden_layers"]
                * len(layout.target_modules)
            )
            svd_estimate = None if per_state is None else per_state * states_per_step
            if svd_estimate is not None and elapsed + svd_estimate * (args.steps + args.warmup) > args.time_budget_s:
                run["skipped"] = (
                    f"time budget: {elapsed:.0f} s elapsed + est. {svd_estimate:.1f} s of SVD per step "
                    f"x {args.steps + args.warmup} steps > --time-budget-s {args.time_budget_s:g}"
                )
            else:
                try:
                    run = train_run(spec, method, layout, args, device, dtype)
                except Exception as err:  # one failed run (e.g. out of memory) must not lose the others
                    run["error"] = f"{type(err).__name__}: {err}"
                free_memory(device)  # outside the except block: its traceback no longer holds the run's tensors
            if svd_estimate is not None and "step_time_s" in run:
                run["svd_s_per_step_est"] = svd_estimate
                run["svd_share_of_step_est"] = svd_estimate / run["step_time_s"]
            if "mfu" in run:
                run["mfu_goal_met"] = run["mfu"] >= MFU_GOAL
            print_run(run, svd_result, args.peak_tflops)
            runs.append(run)
    results["runs"] = runs
    met = [f"{r['model']}/{r['svd']}" for r in runs if r.get("mfu_goal_met")]
    results["mfu_goal_met_by"] = met
    results["elapsed_s"] = time.perf_counter() - start
    print(
        f"GOAL MFU >= {100 * MFU_GOAL:.0f}%: "
        + (f"met by {', '.join(met)}" if met else "not met by any run")
        + ("  (CPU --tiny run: MFU against a GPU peak is not meaningful)" if args.tiny else "")
    )

    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
