"""The training loop: one DeepSpeed engine, a pluggable objective, resumable checkpoints and per-step metrics.

Only the generator trains (the base model is frozen); gradients flow through the frozen base model into it. The loop
is shared by pretraining and instruction tuning: what differs lives in the Objective (ga/train/objective.py).

`train` runs a `Trainer`: `setup` (engine, resume), then `step` (one optimizer step), `validate` and `checkpoint`
until the configured number of steps; a `TrainLog` (ga/train/log.py) reports the metrics.
"""

from __future__ import annotations

import json
import math
import resource
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch

from ga.io import atomic_dir, copy_file, write_json
from ga.train.checkpoint import (
    checkpoints_dir,
    completed_checkpoints,
    generator_master_weights,
    load_checkpoint,
    read_trainer_state,
    save_checkpoint,
)
from ga.train.config import TrainConfig
from ga.train.distributed import Dist, init_distributed
from ga.train.log import METRICS_FILE, TrainLog
from ga.train.objective import MODEL_INPUT_KEYS, OWN_VARIANT, ExampleSums, LossSums, Objective, paired_comparison

# Keys of the DeepSpeed config that TrainConfig owns (one source of truth for each setting).
OWNED_DEEPSPEED_KEYS = (
    "train_batch_size",
    "train_micro_batch_size_per_gpu",
    "gradient_accumulation_steps",
    "gradient_clipping",
    "bf16",
    "fp16",
    "optimizer",
    "scheduler",
)
EPOCH_SEED_STRIDE = 1_000_003
"""Epoch e's permutation is seeded with seed * stride + e: runs of different seeds never share one."""
MAX_EXP_ARG = 700.0
"""math.exp overflows a float64 just above 709: larger losses report this perplexity ceiling."""


def deepspeed_config(cfg: TrainConfig, use_bf16: bool, world_size: int) -> dict:
    """The engine config: the ZeRO settings from cfg.deepspeed_config plus batch, clipping and precision from cfg."""
    path = Path(cfg.deepspeed_config)
    try:
        ds_config = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{cfg.section}.deepspeed_config: {path} does not exist") from err
    except json.JSONDecodeError as err:
        raise ValueError(f"{cfg.section}.deepspeed_config: {path} is not valid JSON ({err})") from err
    clashes = sorted(set(ds_config) & set(OWNED_DEEPSPEED_KEYS))
    if clashes:
        raise ValueError(f"{path}: keys {clashes} are set from the training config ({cfg.section}.*); remove them here")
    stage = ds_config.get("zero_optimization", {}).get("stage", 0)
    if stage not in (0, 1, 2, 3):
        raise ValueError(f"{path}: zero_optimization.stage must be 0, 1, 2 or 3, got {stage!r}")
    ds_config.update(
        {
            "train_micro_batch_size_per_gpu": cfg.micro_batch_size,
            "gradient_accumulation_steps": cfg.grad_accum_steps,
            "train_batch_size": global_batch_size(cfg, world_size),
            # Stage 0 hands p.grad to the plain torch optimizer: the loop clips there itself, so that it can also drop
            # the gradients of a non-finite step (DeepSpeed's own fp32 clipping fails when no parameter has one).
            "gradient_clipping": float(cfg.grad_clip) if stage != 0 else 0.0,
            # check_grad_overflow: a non-finite gradient skips the step under bf16 too (fp32 ZeRO always checks).
            "bf16": {"enabled": use_bf16, "check_grad_overflow": True},
        }
    )
    return ds_config


def global_batch_size(cfg: TrainConfig, world_size: int) -> int:
    """Examples per optimizer step over all processes."""
    return cfg.micro_batch_size * cfg.grad_accum_steps * world_size


def use_bf16(cfg: TrainConfig) -> bool:
    if cfg.precision == "auto":
        return torch.cuda.is_available()
    if cfg.precision == "bf16" and not torch.cuda.is_available():
        raise ValueError(f"{cfg.section}.precision: bf16 needs a GPU; use fp32 or auto on CPU")
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
            generator = torch.Generator().manual_seed(self.seed * EPOCH_SEED_STRIDE + epoch)
            self._perm = torch.randperm(self.n_examples, generator=generator)
            self._epoch = epoch
        return int(self._perm[offset])

    def micro_batch(self, step: int, micro: int, cfg: TrainConfig, dist_info: Dist) -> list[int]:
        micro_offset = (micro * dist_info.world_size + dist_info.rank) * cfg.micro_batch_size
        start = step * global_batch_size(cfg, dist_info.world_size) + micro_offset
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


LR_MULTIPLIER = "lr_multiplier"
"""The optimizer param-group key holding a group's factor on the scheduled learning rate."""


def optimizer_groups(model, cfg: TrainConfig) -> list[dict]:
    """AdamW param groups of the generator: weight decay on matrices, never on norm gains, and each part's
    `cfg.lr_multipliers` factor. Parameters that share both settings share a group, in the model's parameter order,
    so without multipliers there are exactly two groups: decayed, then not decayed. `Trainer.step` sets each group's
    lr from the schedule and its factor before every step."""
    groups: dict[tuple[bool, float], list[torch.nn.Parameter]] = {}
    for part, parameter in model.generator_parameters_by_part():
        key = (parameter.ndim < 2, float(cfg.lr_multipliers.get(part, 1.0)))
        groups.setdefault(key, []).append(parameter)
    return [
        {"params": groups[key], "weight_decay": 0.0 if key[0] else cfg.weight_decay, LR_MULTIPLIER: key[1]}
        for key in sorted(groups)
    ]


@torch.no_grad()
def validate(engine, objective: Objective, val_set: Sequence, cfg: TrainConfig, dist_info: Dist) -> dict[str, float]:
    """Per-variant, per-part perplexity on the held-out split (each process scores its share; sums are combined).

    This is this project's own protocol (held-out examples in the training layout, scored as the objective's
    `validation_variants` say), not the paper's Table 2 protocol (ga/train/paper_protocol.py); the metric names
    `<variant>_<part>_ppl` stay as they are.
    The donor of held-out example i (for the other-context control) is `val_set.donor_for(i)` when the set can name
    one: `ga.data.examples.PretrainExamples` picks the nearest later example that shares no document with i (the
    next example is often the same document's continuation), `ga.data.sft.tokenize.SftExamples` one whose context
    shares no source with i's. Sets without document ids (e.g. the tests' synthetic ones, whose every example is
    its own token stream) fall back to example i+1, cyclically among the scored ones.

    `donor_for(i)` may return None: no example qualifies. Example i then scores nothing in the objective's
    `donor_variants` (it is run with itself as a stand-in donor and its tokens are not counted, so that every
    process still runs the same forward passes), and `<variant>_unavailable_examples` counts such examples.

    Paired control, per part and donor variant: `own_vs_<variant>_<part>_lower` of `..._examples` held-out examples
    have a lower mean NLL with their own adapter than with the donor's, and `..._sign_p` is the two-sided sign
    test's p-value of that split (the aggregate perplexities can hide a few examples that dominate the sum).
    """
    n_val = len(val_set) if cfg.val_examples == 0 else min(cfg.val_examples, len(val_set))
    if n_val < 2:
        raise ValueError(
            f"validation needs at least 2 held-out examples (one to score, another as the "
            f"other-context donor); the validation split has {len(val_set)}"
        )
    donor_for = getattr(val_set, "donor_for", None)

    def donor_of(receiver: int) -> int | None:
        return donor_for(receiver) if donor_for is not None else (receiver + 1) % n_val

    n_parts = len(objective.part_names)
    sums: dict[str, ExampleSums] = {}  # per example: the aggregates and the paired own-vs-donor comparison
    unavailable = torch.zeros((), dtype=torch.float64, device=dist_info.device)
    mine = list(range(dist_info.rank, n_val, dist_info.world_size))
    was_training = engine.training
    engine.eval()
    # Every process runs the same number of forward passes (ZeRO-3 gathers parameters collectively).
    n_batches = math.ceil(math.ceil(n_val / dist_info.world_size) / cfg.val_batch_size)
    for b in range(n_batches):
        indices = mine[b * cfg.val_batch_size : (b + 1) * cfg.val_batch_size]
        scored = bool(indices)
        indices = indices or [0]  # a process with no examples left still joins the collective forward passes
        donors = [donor_of(i) for i in indices]
        no_donor = torch.tensor([d is None for d in donors])
        batch = objective.collate([val_set[i] for i in indices])
        donor = objective.collate([val_set[i if d is None else d] for i, d in zip(indices, donors)])
        for variant, variant_batch in objective.validation_variants(batch, donor):
            out = engine(**model_inputs(variant_batch, dist_info.device))
            if variant not in sums:  # created on every process, scored or not: each joins the collective sum
                sums[variant] = ExampleSums(n_val, n_parts)
            variant_sums = sums[variant]
            if scored:
                token_counts = out.window_token_counts
                if variant in objective.donor_variants:  # rows without a donor count no token
                    token_counts = token_counts.masked_fill(no_donor.to(token_counts.device)[:, None], 0)
                variant_sums.add(indices, out.window_losses, token_counts, variant_batch["window_part"])
        if scored:
            unavailable += int(no_donor.sum())
    if was_training:
        engine.train()
    metrics = {}
    for variant, variant_sums in sums.items():
        variant_sums.combine(dist_info.sum)
        if variant in objective.donor_variants:
            metrics[f"{variant}_unavailable_examples"] = int(dist_info.sum(unavailable))
        for p, part in enumerate(objective.part_names):
            loss = variant_sums.mean(p)
            if loss is not None:
                metrics[f"{variant}_{part}_loss"] = loss
                metrics[f"{variant}_{part}_ppl"] = math.exp(min(loss, MAX_EXP_ARG))
    for variant in objective.donor_variants:
        if OWN_VARIANT not in sums or variant not in sums:
            continue
        for p, part in enumerate(objective.part_names):
            paired = paired_comparison(sums[OWN_VARIANT], sums[variant], p)
            if paired is not None:
                key = f"{OWN_VARIANT}_vs_{variant}_{part}"
                metrics.update(
                    {
                        f"{key}_lower": paired["lower"],
                        f"{key}_examples": paired["examples"],
                        f"{key}_sign_p": paired["sign_test_p"],
                    }
                )
    return metrics


class Trainer:
    """One training run of a model's generator on a DeepSpeed engine, resumable from its checkpoints.

    setup:      the process group, the frozen base model, the engine and the resume from the latest checkpoint.
    step:       one optimizer step (gradient accumulation, the non-finite skip rule, the lr schedule) -> metrics row.
    validate:   per-variant, per-part perplexity on the held-out split.
    checkpoint: a resumable checkpoint of the current step.
    run:        steps to cfg.steps with periodic validation and checkpoints; the final step is always both.
    """

    def __init__(
        self,
        model,
        objective: Objective,
        train_set: Sequence,
        val_set: Sequence,
        cfg: TrainConfig,
        state_dir: Path,
        seed: int,
        fingerprint: Mapping | None = None,
    ):
        self.model, self.objective, self.cfg = model, objective, cfg
        self.train_set, self.val_set = train_set, val_set
        self.state_dir = Path(state_dir)
        self.seed = seed
        self.fingerprint = json.loads(json.dumps(dict(fingerprint or {}), sort_keys=True, default=str))
        self.skipped_total = 0
        self.elapsed_before = 0.0  # seconds spent by earlier (killed) attempts of this run
        self.last_saved = self.last_validated = -1
        self.val_metrics: dict[str, float] = {}
        self.setup()

    def _announce(self, message: str) -> None:
        if self.dist.is_main:
            print(f"[train] {message}", flush=True)

    def setup(self) -> None:
        import deepspeed

        cfg, model = self.cfg, self.model
        self.dist = init_distributed()
        if cfg.num_threads is not None:
            torch.set_num_threads(cfg.num_threads)
        torch.manual_seed(self.seed + self.dist.rank)
        self.fingerprint["world_size"] = self.dist.world_size

        self.generator_params = freeze_all_but_generator(model)
        self.trainable, self.frozen = count_parameters(model)
        self._announce(
            f"parameters: trainable (generator) {self.trainable:,}; frozen (base model) {self.frozen:,}; "
            f"processes {self.dist.world_size} on {self.dist.device}"
        )
        if cfg.gradient_checkpointing:
            # Non-reentrant: reentrant checkpointing with frozen inputs silently yields no generator gradients.
            model.base_model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        model.train()

        self.bf16 = use_bf16(cfg)
        ds_config = deepspeed_config(cfg, self.bf16, self.dist.world_size)
        self.zero_stage = ds_config.get("zero_optimization", {}).get("stage", 0)
        optimizer = torch.optim.AdamW(
            optimizer_groups(model, cfg), lr=cfg.lr * cfg.lr_factor(0), betas=tuple(cfg.adam_betas), eps=cfg.adam_eps
        )
        self.engine, _, _, _ = deepspeed.initialize(
            model=model, optimizer=optimizer, config=ds_config, model_parameters=self.generator_params
        )
        self.start_step = self.resume()
        self.order = DataOrder(len(self.train_set), self.seed)
        self.log = TrainLog(
            self.state_dir,
            cfg.steps,
            self.start_step,
            self.objective.part_names,
            cfg.tensorboard,
            enabled=self.dist.is_main,
        )
        self.run_start = time.perf_counter()

    def resume(self) -> int:
        """Restore the latest checkpoint written under this run's fingerprint; returns the step to start from.

        Checkpoints of a different fingerprint (configuration, data) are stale: they are removed.
        """
        checkpoints = completed_checkpoints(self.state_dir)
        if not checkpoints:
            return 0
        _, latest = checkpoints[-1]
        if read_trainer_state(latest).get("fingerprint") != self.fingerprint:
            self._announce(
                f"checkpoints in {checkpoints_dir(self.state_dir)} were written under a different "
                f"configuration; starting afresh"
            )
            if self.dist.is_main:
                shutil.rmtree(checkpoints_dir(self.state_dir))
            self.dist.barrier()
            return 0
        state = load_checkpoint(self.engine, self.model, latest, self.dist)
        self.skipped_total, self.elapsed_before = state["skipped_steps"], state.get("elapsed_s", 0.0)
        if state["step"]:
            self.last_saved = state["step"]
        self._announce(f"resumed from {latest} (step {state['step']} of {self.cfg.steps})")
        return state["step"]

    @property
    def elapsed_s(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.run_start

    def _forward_backward(self, batch: dict[str, torch.Tensor], losses: LossSums) -> bool:
        """One micro-batch's forward and backward; returns whether its loss was non-finite."""
        try:
            out = self.engine(**model_inputs(batch, self.dist.device))
            loss = out.loss
        except torch.linalg.LinAlgError:
            # The SVD normalization refuses a non-finite context state: a non-finite step like a NaN loss.
            out = None
            loss = torch.stack([p.sum() for p in self.generator_params]).sum() * float("nan")
        nonfinite = not torch.isfinite(loss)
        if nonfinite:
            # Poison every gradient so the step is skipped whatever the ZeRO stage (see _apply_update); the
            # backward still runs so that every process takes part in the gradient reduction.
            loss = loss * float("nan")
        self.engine.backward(loss)
        if out is not None:
            losses.add(out.window_losses, out.window_token_counts, batch["window_part"])
        return bool(nonfinite)

    def _apply_update(self, nonfinite: bool) -> tuple[float | None, bool]:
        """The optimizer step at the accumulation boundary, skipped if any process saw a non-finite loss or
        gradient; returns (gradient norm, whether the step was skipped)."""
        grad_norm = None
        if self.zero_stage == 0:
            # Stage 0 hands the plain torch optimizer the averaged p.grad: check it ourselves, and skip a bad step
            # by dropping the gradients (AdamW leaves parameters without a gradient untouched).
            max_norm = self.cfg.grad_clip if self.cfg.grad_clip > 0 else math.inf
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.generator_params, max_norm))
            nonfinite = nonfinite or not math.isfinite(grad_norm)
            if self.dist.max(nonfinite):
                for p in self.generator_params:
                    p.grad = None
        self.engine.step()
        skipped = bool(self.dist.max(nonfinite)) or not self.engine.was_step_applied()
        if self.zero_stage != 0:
            norm = self.engine.get_global_grad_norm()
            grad_norm = None if norm is None else float(norm)
        return grad_norm, skipped

    def step(self, step: int) -> dict:
        """Optimizer step `step` (0-based) over cfg.grad_accum_steps micro-batches; returns its metrics row."""
        cfg = self.cfg
        step_start = time.perf_counter()
        lr = cfg.lr * cfg.lr_factor(step)
        for group in self.engine.optimizer.param_groups:
            group["lr"] = lr * group.get(LR_MULTIPLIER, 1.0)
        losses = LossSums(len(self.objective.part_names))
        input_tokens = torch.zeros((), dtype=torch.float64)
        nonfinite = False
        for micro in range(cfg.grad_accum_steps):
            examples = [self.train_set[i] for i in self.order.micro_batch(step, micro, cfg, self.dist)]
            batch = self.objective.collate(examples)
            nonfinite |= self._forward_backward(batch, losses)
            input_tokens += batch["attention_mask"].sum()
            if micro < cfg.grad_accum_steps - 1:
                self.engine.step()  # DeepSpeed counts micro-steps; it only updates at the accumulation boundary
        grad_norm, skipped = self._apply_update(nonfinite)
        self.skipped_total += int(skipped)
        if self.skipped_total > cfg.max_skipped_steps:
            raise RuntimeError(
                f"{self.skipped_total} optimizer steps had a non-finite loss or gradient (last at "
                f"step {step + 1}); that exceeds {cfg.section}.max_skipped_steps={cfg.max_skipped_steps}. "
                f"Lower the learning rate or check the data."
            )

        losses.combine(self.dist.sum)
        tokens = float(self.dist.sum(input_tokens))
        step_time = time.perf_counter() - step_start
        loss = losses.mean()
        return {
            "kind": "train",
            "step": step + 1,
            "loss": float("nan") if loss is None else loss,
            **{f"{part}_loss": losses.mean(p) for p, part in enumerate(self.objective.part_names)},
            "lr": lr,
            "grad_norm": grad_norm,
            "skipped": skipped,
            "skipped_total": self.skipped_total,
            "tokens": int(tokens),
            "tokens_per_s": tokens / step_time,
            "step_time_s": step_time,
            "mem_gib": peak_memory_gib(self.dist.device),
            "elapsed_s": self.elapsed_s,
        }

    def validate(self, step: int) -> None:
        self.val_metrics = validate(self.engine, self.objective, self.val_set, self.cfg, self.dist)
        self.last_validated = step
        self.log.validation(step, self.val_metrics)

    def checkpoint(self, step: int) -> None:
        state = {
            "step": step,
            "skipped_steps": self.skipped_total,
            "examples_consumed": step * global_batch_size(self.cfg, self.dist.world_size),
            "elapsed_s": self.elapsed_s,
            "fingerprint": self.fingerprint,
        }
        save_checkpoint(self.engine, self.model, self.state_dir, step, state, self.cfg.keep_checkpoints, self.dist)
        self.last_saved = step

    def run(self) -> dict:
        """Train to cfg.steps; returns the final validation metrics plus run counters."""
        cfg = self.cfg
        try:
            for step in range(self.start_step, cfg.steps):
                self.log.train_step(self.step(step))
                done = step + 1
                if cfg.eval_every and done % cfg.eval_every == 0 and done < cfg.steps:
                    self.validate(done)
                if done % cfg.checkpoint_every == 0 and done < cfg.steps:
                    self.checkpoint(done)
            self.log.steps_done()
            if self.last_validated != cfg.steps:
                self.validate(cfg.steps)
            if self.last_saved != cfg.steps:
                self.checkpoint(cfg.steps)
        finally:
            self.log.close()
        return {
            "step": cfg.steps,
            "skipped_steps": self.skipped_total,
            "trainable_parameters": self.trainable,
            "frozen_parameters": self.frozen,
            "zero_stage": self.zero_stage,
            "bf16": self.bf16,
            "world_size": self.dist.world_size,
            **self.val_metrics,
        }


def train(
    model,
    objective: Objective,
    train_set: Sequence,
    val_set: Sequence,
    cfg: TrainConfig,
    state_dir: Path,
    seed: int,
    fingerprint: Mapping | None = None,
) -> dict:
    """Train `model`'s generator to cfg.steps, resuming from the latest compatible checkpoint in `state_dir`.

    train_set / val_set: indexable collections of examples (what objective.collate takes).
    fingerprint: JSON-able description of everything the run depends on (config, data); a checkpoint written under a
    different fingerprint is stale and training starts afresh.
    Writes <state_dir>/metrics.jsonl and checkpoints; returns the final validation metrics plus run counters.
    Call from every process of the job (torchrun) or from a plain single process.
    """
    return Trainer(model, objective, train_set, val_set, cfg, state_dir, seed, fingerprint).run()


def export_generator(model, out_dir: Path, zero_stage: int | None = None, dist_info: Dist | None = None) -> None:
    """Write the trained generator's fp32 master weights as a GenerativeAdapter.save_pretrained folder, atomically.

    A collective call after `train` (every process gathers its weight partitions); the main process writes.
    zero_stage: not needed (the parameters know where their master weights live); accepted for existing callers.
    """
    weights = generator_master_weights(model)
    if dist_info is None or dist_info.is_main:
        with atomic_dir(out_dir) as tmp:
            model.save_pretrained(tmp, weights=weights)


SUMMARY_DIGITS = 4
"""Decimals of the metrics a training stage reports on its last log line."""


def save_training_outputs(
    model,
    result: dict,
    state_dir: Path,
    generator_dir: Path,
    metrics_path: Path,
    validation_path: Path,
    dist_info: Dist,
    main_rank_results: Callable[[], dict] | None = None,
) -> dict | None:
    """What a training stage writes once its loop ended (a collective call): the generator (`export_generator`),
    and on the main process the final validation (`result` plus `main_rank_results()`, checks that need the exported
    generator) and a copy of the run's metrics.jsonl from `state_dir`. Returns the completed `result` on the main
    process, None on the others, once every process is done."""
    export_generator(model, generator_dir, result["zero_stage"], dist_info)
    if dist_info.is_main:
        if main_rank_results is not None:
            result.update(main_rank_results())
        write_json(result, validation_path, sort_keys=False)
        copy_file(Path(state_dir) / METRICS_FILE, metrics_path)
    dist_info.barrier()
    return result if dist_info.is_main else None


def training_summary(result: dict, suffixes: tuple[str, ...]) -> dict:
    """A training stage's last log line: the step, the skipped steps and the final metrics whose names end in one of
    `suffixes`, rounded."""
    return {
        "step": result["step"],
        "skipped_steps": result["skipped_steps"],
        **{key: round(value, SUMMARY_DIGITS) for key, value in result.items() if key.endswith(suffixes)},
    }
