"""The training loop: one DeepSpeed engine, a pluggable objective, resumable checkpoints and per-step metrics.

Only the generator trains (the base model is frozen); gradients flow through the frozen base model into it. The loop
is shared by pretraining and instruction tuning: what differs lives in the Objective (ga/train/objective.py).
"""
from __future__ import annotations

import json
import math
import resource
import shutil
import time
from pathlib import Path
from typing import Mapping, Sequence

import torch
from tqdm import tqdm

from ga.io import atomic_dir
from ga.train.checkpoint import (completed_checkpoints, generator_master_weights, load_checkpoint, read_trainer_state,
                                 save_checkpoint)
from ga.train.config import TrainConfig
from ga.train.distributed import Dist, init_distributed
from ga.train.objective import MODEL_INPUT_KEYS, Objective, part_sums

# Keys of the DeepSpeed config that TrainConfig owns (one source of truth for each setting).
OWNED_DEEPSPEED_KEYS = ("train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps",
                        "gradient_clipping", "bf16", "fp16", "optimizer", "scheduler")
METRICS_FILE = "metrics.jsonl"


def deepspeed_config(cfg: TrainConfig, use_bf16: bool, world_size: int) -> dict:
    """The engine config: the ZeRO settings from cfg.deepspeed_config plus batch, clipping and precision from cfg."""
    path = Path(cfg.deepspeed_config)
    try:
        ds_config = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise FileNotFoundError(f"pretrain.deepspeed_config: {path} does not exist") from err
    except json.JSONDecodeError as err:
        raise ValueError(f"pretrain.deepspeed_config: {path} is not valid JSON ({err})") from err
    clashes = sorted(set(ds_config) & set(OWNED_DEEPSPEED_KEYS))
    if clashes:
        raise ValueError(f"{path}: keys {clashes} are set from the training config (pretrain.*); remove them here")
    stage = ds_config.get("zero_optimization", {}).get("stage", 0)
    if stage not in (0, 1, 2, 3):
        raise ValueError(f"{path}: zero_optimization.stage must be 0, 1, 2 or 3, got {stage!r}")
    ds_config.update({
        "train_micro_batch_size_per_gpu": cfg.micro_batch_size,
        "gradient_accumulation_steps": cfg.grad_accum_steps,
        "train_batch_size": cfg.micro_batch_size * cfg.grad_accum_steps * world_size,
        # Stage 0 hands p.grad to the plain torch optimizer: the loop clips there itself, so that it can also drop
        # the gradients of a non-finite step (DeepSpeed's own fp32 clipping fails when no parameter has one).
        "gradient_clipping": float(cfg.grad_clip) if stage != 0 else 0.0,
        # check_grad_overflow: a non-finite gradient skips the step under bf16 too (fp32 ZeRO always checks).
        "bf16": {"enabled": use_bf16, "check_grad_overflow": True},
    })
    return ds_config


def use_bf16(cfg: TrainConfig) -> bool:
    if cfg.precision == "auto":
        return torch.cuda.is_available()
    if cfg.precision == "bf16" and not torch.cuda.is_available():
        raise ValueError("pretrain.precision: bf16 needs a GPU; use fp32 or auto on CPU")
    return cfg.precision == "bf16"


class DataOrder:
    """Deterministic example order: a fresh seeded permutation per epoch, consumed as one global stream.

    Global batch k of an optimizer step takes stream positions [k*G, (k+1)*G) (G = micro x accum x processes); micro
    step m of rank r takes its own slice of it. The data position of a checkpoint is therefore the step itself.
    """

    def __init__(self, n_examples: int, seed: int):
        if n_examples < 1:
            raise ValueError("the training split has no examples")
        self.n_examples = n_examples
        self.seed = seed
        self._epoch = -1
        self._perm = torch.empty(0, dtype=torch.long)

    def index(self, position: int) -> int:
        epoch, offset = divmod(position, self.n_examples)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(self.n_examples, generator=generator)
            self._epoch = epoch
        return int(self._perm[offset])

    def micro_batch(self, step: int, micro: int, cfg: TrainConfig, dist_info: Dist) -> list[int]:
        global_batch = cfg.micro_batch_size * cfg.grad_accum_steps * dist_info.world_size
        start = step * global_batch + (micro * dist_info.world_size + dist_info.rank) * cfg.micro_batch_size
        return [self.index(start + i) for i in range(cfg.micro_batch_size)]


def model_inputs(batch: Mapping[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {key: batch[key].to(device) for key in MODEL_INPUT_KEYS}


def peak_memory_gib(device: torch.device) -> float:
    """Peak accelerator memory on GPU; peak resident memory of this process on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # ru_maxrss is KiB on Linux


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    return trainable, frozen


def freeze_all_but_generator(model) -> list[torch.nn.Parameter]:
    """Mark exactly the generator's parameters trainable; returns them."""
    generator = list(model.generator_parameters())
    generator_ids = {id(p) for p in generator}
    for p in model.parameters():
        p.requires_grad_(id(p) in generator_ids)
    if not generator:
        raise ValueError("the model has no generator parameters to train")
    return generator


@torch.no_grad()
def validate(engine, objective: Objective, val_set: Sequence, cfg: TrainConfig, dist_info: Dist) -> dict[str, float]:
    """Per-variant, per-part perplexity on the held-out split (each process scores its share; sums are combined).

    Donor of held-out example i (for the other-context control) is example i+1 (cyclically): always a different
    sequence of the same split.
    """
    n_val = len(val_set) if cfg.val_examples == 0 else min(cfg.val_examples, len(val_set))
    if n_val < 2:
        raise ValueError(f"validation needs at least 2 held-out examples (one to score, another as the "
                         f"other-context donor); the validation split has {len(val_set)}")
    n_parts = len(objective.part_names)
    sums: dict[str, torch.Tensor] = {}
    mine = list(range(dist_info.rank, n_val, dist_info.world_size))
    was_training = engine.training
    engine.eval()
    # Every process runs the same number of forward passes (ZeRO-3 gathers parameters collectively).
    n_batches = math.ceil(math.ceil(n_val / dist_info.world_size) / cfg.val_batch_size)
    for b in range(n_batches):
        indices = mine[b * cfg.val_batch_size: (b + 1) * cfg.val_batch_size]
        weight = 1.0 if indices else 0.0
        indices = indices or [0]  # a process with no examples left still joins the collective forward passes
        batch = objective.collate([val_set[i] for i in indices])
        donor = objective.collate([val_set[(i + 1) % n_val] for i in indices])
        for variant, variant_batch in objective.validation_variants(batch, donor):
            out = engine(**model_inputs(variant_batch, dist_info.device))
            nll, tokens = part_sums(out.window_losses, out.window_token_counts, variant_batch["window_part"], n_parts)
            acc = sums.setdefault(variant, torch.zeros(2, n_parts, dtype=torch.float64))
            acc[0] += weight * nll.cpu()
            acc[1] += weight * tokens.cpu()
    if was_training:
        engine.train()
    metrics = {}
    for variant, acc in sums.items():
        total = dist_info.sum(acc)
        for p, part in enumerate(objective.part_names):
            if total[1, p] > 0:
                loss = float(total[0, p] / total[1, p])
                metrics[f"{variant}_{part}_loss"] = loss
                metrics[f"{variant}_{part}_ppl"] = math.exp(min(loss, 700.0))
    return metrics


class MetricsLog:
    """Append-only JSONL written by the main process; on resume, rows past the resumed step are dropped."""

    def __init__(self, path: Path, resume_step: int, enabled: bool):
        self.path = Path(path)
        self.enabled = enabled
        if not enabled:
            return
        kept = []
        if resume_step > 0 and self.path.is_file():
            for line in self.path.read_text().splitlines():
                if line.strip() and json.loads(line)["step"] <= resume_step:
                    kept.append(line)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("".join(line + "\n" for line in kept))
        self._file = self.path.open("a")

    def write(self, row: dict) -> None:
        if self.enabled:
            self._file.write(json.dumps(row) + "\n")
            self._file.flush()

    def close(self) -> None:
        if self.enabled:
            self._file.close()


def train(model, objective: Objective, train_set: Sequence, val_set: Sequence, cfg: TrainConfig, state_dir: Path,
          seed: int, fingerprint: Mapping | None = None) -> dict:
    """Train `model`'s generator to cfg.steps, resuming from the latest compatible checkpoint in `state_dir`.

    train_set / val_set: indexable collections of examples (what objective.collate takes).
    fingerprint: JSON-able description of everything the run depends on (config, data); a checkpoint written under a
    different fingerprint is stale and training starts afresh.
    Writes <state_dir>/metrics.jsonl and checkpoints; returns the final validation metrics plus run counters.
    Call from every process of the job (torchrun) or from a plain single process.
    """
    import deepspeed

    state_dir = Path(state_dir)
    dist_info = init_distributed()
    if cfg.num_threads is not None:
        torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(seed + dist_info.rank)
    fingerprint = json.loads(json.dumps(dict(fingerprint or {}), sort_keys=True, default=str))
    fingerprint["world_size"] = dist_info.world_size

    generator_params = freeze_all_but_generator(model)
    trainable, frozen = count_parameters(model)
    if dist_info.is_main:
        print(f"[train] parameters: trainable (generator) {trainable:,}; frozen (base model) {frozen:,}; "
              f"processes {dist_info.world_size} on {dist_info.device}", flush=True)
    if cfg.gradient_checkpointing:
        # Non-reentrant: reentrant checkpointing with frozen inputs silently yields no generator gradients.
        model.base_model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    model.train()

    bf16 = use_bf16(cfg)
    ds_config = deepspeed_config(cfg, bf16, dist_info.world_size)
    zero_stage = ds_config.get("zero_optimization", {}).get("stage", 0)
    decay = [p for p in generator_params if p.ndim >= 2]
    no_decay = [p for p in generator_params if p.ndim < 2]  # norm gains are not decayed
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr * cfg.lr_factor(0), betas=tuple(cfg.adam_betas), eps=cfg.adam_eps)
    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, config=ds_config,
                                           model_parameters=generator_params)

    start_step, skipped_total, elapsed_before = 0, 0, 0.0
    checkpoints = completed_checkpoints(state_dir)
    if checkpoints:
        latest_step, latest = checkpoints[-1]
        saved_fingerprint = read_trainer_state(latest).get("fingerprint")
        if saved_fingerprint == fingerprint:
            state = load_checkpoint(engine, model, latest, dist_info)
            start_step, skipped_total = state["step"], state["skipped_steps"]
            elapsed_before = state.get("elapsed_s", 0.0)
            if dist_info.is_main:
                print(f"[train] resumed from {latest} (step {start_step} of {cfg.steps})", flush=True)
        else:
            if dist_info.is_main:
                print(f"[train] checkpoints in {state_dir / 'checkpoints'} were written under a different "
                      f"configuration; starting afresh", flush=True)
                shutil.rmtree(state_dir / "checkpoints")
            dist_info.barrier()

    order = DataOrder(len(train_set), seed)
    log = MetricsLog(state_dir / "metrics.jsonl", start_step, dist_info.is_main)
    writer = None
    if cfg.tensorboard and dist_info.is_main:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise ImportError("pretrain.tensorboard is true but the `tensorboard` package is not installed") from err
        writer = SummaryWriter(str(state_dir / "tensorboard"))

    n_parts = len(objective.part_names)
    last_saved = start_step if checkpoints and start_step else -1
    last_validated = -1
    val_metrics: dict[str, float] = {}
    run_start = time.perf_counter()
    progress = tqdm(total=cfg.steps, initial=start_step, desc="train", disable=not dist_info.is_main,
                    dynamic_ncols=True)

    def checkpoint(step: int) -> None:
        nonlocal last_saved
        state = {"step": step, "skipped_steps": skipped_total,
                 "examples_consumed": step * cfg.micro_batch_size * cfg.grad_accum_steps * dist_info.world_size,
                 "elapsed_s": elapsed_before + time.perf_counter() - run_start, "fingerprint": fingerprint}
        save_checkpoint(engine, model, state_dir, step, state, cfg.keep_checkpoints, dist_info)
        last_saved = step

    def run_validation(step: int) -> None:
        nonlocal val_metrics, last_validated
        val_metrics = validate(engine, objective, val_set, cfg, dist_info)
        last_validated = step
        log.write({"kind": "val", "step": step, **val_metrics})
        if writer is not None:
            for key, value in val_metrics.items():
                writer.add_scalar(f"val/{key}", value, step)
        if dist_info.is_main:
            shown = {k: round(v, 3) for k, v in val_metrics.items() if k.endswith("_ppl")}
            tqdm.write(f"[val] step {step}: {shown}")

    for step in range(start_step, cfg.steps):
        step_start = time.perf_counter()
        lr = cfg.lr * cfg.lr_factor(step)
        for group in engine.optimizer.param_groups:
            group["lr"] = lr
        sums = torch.zeros(2, n_parts, dtype=torch.float64)
        total = torch.zeros(3, dtype=torch.float64)  # nll sum, labelled tokens, input tokens
        nonfinite = 0.0
        for micro in range(cfg.grad_accum_steps):
            batch = objective.collate([train_set[i] for i in order.micro_batch(step, micro, cfg, dist_info)])
            try:
                out = engine(**model_inputs(batch, dist_info.device))
                loss = out.loss
            except torch.linalg.LinAlgError:
                # The SVD normalization refuses a non-finite context state: a non-finite step like a NaN loss.
                out = None
                loss = torch.stack([p.sum() for p in generator_params]).sum() * float("nan")
            if not torch.isfinite(loss):
                nonfinite = 1.0
                # Poison every gradient so the step is skipped whatever the ZeRO stage (overflow check below);
                # the backward still runs so that every process takes part in the gradient reduction.
                loss = loss * float("nan")
            engine.backward(loss)
            total[2] += batch["attention_mask"].sum()
            if out is not None:
                nll, tokens = part_sums(out.window_losses, out.window_token_counts, batch["window_part"],
                                        n_parts)
                sums[0] += nll.cpu()
                sums[1] += tokens.cpu()
                counts = out.window_token_counts.detach().to(torch.float64)
                total[0] += torch.where(counts > 0, out.window_losses.detach().to(torch.float64) * counts,
                                        torch.zeros_like(counts)).sum().cpu()
                total[1] += counts.sum().cpu()
            if micro < cfg.grad_accum_steps - 1:
                engine.step()  # DeepSpeed counts micro-steps; it only updates at the accumulation boundary
        grad_norm = None
        if zero_stage == 0:
            # Stage 0 hands the plain torch optimizer the averaged p.grad: check it ourselves, and skip a bad step
            # by dropping the gradients (AdamW leaves parameters without a gradient untouched).
            max_norm = cfg.grad_clip if cfg.grad_clip > 0 else math.inf
            grad_norm = float(torch.nn.utils.clip_grad_norm_(generator_params, max_norm))
            if not math.isfinite(grad_norm):
                nonfinite = 1.0
            if dist_info.max(nonfinite):
                for p in generator_params:
                    p.grad = None
        engine.step()
        nonfinite = dist_info.max(nonfinite)
        skipped = bool(nonfinite) or not engine.was_step_applied()
        if zero_stage != 0:
            norm = engine.get_global_grad_norm()
            grad_norm = None if norm is None else float(norm)
        skipped_total += int(skipped)
        if skipped_total > cfg.max_skipped_steps:
            raise RuntimeError(f"{skipped_total} optimizer steps had a non-finite loss or gradient (last at step "
                               f"{step + 1}); that exceeds pretrain.max_skipped_steps={cfg.max_skipped_steps}. "
                               f"Lower the learning rate or check the data.")

        sums = dist_info.sum(sums)
        total = dist_info.sum(total)
        step_time = time.perf_counter() - step_start
        row = {"kind": "train", "step": step + 1,
               "loss": float(total[0] / total[1]) if total[1] > 0 else float("nan"),
               **{f"{part}_loss": (float(sums[0, p] / sums[1, p]) if sums[1, p] > 0 else None)
                  for p, part in enumerate(objective.part_names)},
               "lr": lr, "grad_norm": grad_norm, "skipped": skipped, "skipped_total": skipped_total,
               "tokens": int(total[2]), "tokens_per_s": float(total[2]) / step_time, "step_time_s": step_time,
               "mem_gib": peak_memory_gib(dist_info.device),
               "elapsed_s": elapsed_before + time.perf_counter() - run_start}
        log.write(row)
        if writer is not None:
            for key in ("loss", "lr", "grad_norm", "tokens_per_s", *(f"{p}_loss" for p in objective.part_names)):
                if row.get(key) is not None:
                    writer.add_scalar(f"train/{key}", row[key], step + 1)
        progress.update(1)
        progress.set_postfix(loss=f"{row['loss']:.3f}", lr=f"{lr:.2e}", skipped=skipped_total)

        done = step + 1
        if cfg.eval_every and done % cfg.eval_every == 0 and done < cfg.steps:
            run_validation(done)
        if done % cfg.checkpoint_every == 0 and done < cfg.steps:
            checkpoint(done)
    progress.close()

    if last_validated != cfg.steps:
        run_validation(cfg.steps)
    if last_saved != cfg.steps:
        checkpoint(cfg.steps)
    log.close()
    if writer is not None:
        writer.close()
    return {"step": cfg.steps, "skipped_steps": skipped_total, "trainable_parameters": trainable,
            "frozen_parameters": frozen, "zero_stage": zero_stage, "bf16": bf16, "world_size": dist_info.world_size,
            **val_metrics}


def export_generator(model, out_dir: Path, zero_stage: int | None = None, dist_info: Dist | None = None) -> None:
    """Write the trained generator's fp32 master weights as a GenerativeAdapter.save_pretrained folder, atomically.

    A collective call after `train` (every process gathers its weight partitions); the main process writes.
    zero_stage: not needed (the parameters know where their master weights live); accepted for existing callers.
    """
    weights = generator_master_weights(model)
    if dist_info is None or dist_info.is_main:
        with atomic_dir(out_dir) as tmp:
            model.save_pretrained(tmp, weights=weights)
