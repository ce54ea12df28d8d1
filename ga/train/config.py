"""Training hyperparameters: the `pretrain:` section of a pipeline config (and later `sft:`)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

DECAYS = ("cosine", "linear", "constant")
PRECISIONS = ("auto", "bf16", "fp32")
DEFAULT_RESOURCES = {"gpus": 0, "nodes": 1, "threads": 2, "mem_mb": 8000, "runtime": 60}
"""Rule resources when a config gives none: one CPU process."""


@dataclass
class TrainConfig:
    """One training run of the generator on a DeepSpeed engine (SPEC §2.1 defaults where the paper has one).

    steps:              optimizer steps in the whole run (a resumed run continues towards the same total).
    micro_batch_size:   examples per process per forward/backward pass.
    grad_accum_steps:   micro-batches accumulated per optimizer step; global batch = micro x accum x processes.
    lr:                 peak learning rate of AdamW.
    warmup_steps:       linear warmup from 0 to `lr` over this many steps.
    decay:              after warmup: `cosine` or `linear` down to min_lr_ratio * lr at `steps`, or `constant`.
    min_lr_ratio:       floor of the decay as a fraction of `lr`.
    weight_decay:       AdamW decoupled weight decay.
    adam_betas / adam_eps: AdamW moments' decay rates and denominator epsilon.
    grad_clip:          global gradient-norm clipping threshold (0 disables clipping).
    deepspeed_config:   JSON with the ZeRO settings (resources/deepspeed/zero{0,2,3}.json); batch sizes, clipping and
                        precision are filled in from this config and must not appear in the file.
    precision:          `auto` (bf16 on GPU, fp32 on CPU), `bf16` or `fp32`.
    gradient_checkpointing: recompute the base model's activations in backward (non-reentrant), trading time for memory.
    checkpoint_every:   save a resumable checkpoint every this many steps (and always at the end).
    keep_checkpoints:   how many most recent checkpoints to keep on disk.
    eval_every:         validate every this many steps (0: only at the end).
    val_examples:       held-out examples used per validation (0: all of them).
    val_batch_size:     examples per validation forward pass.
    max_skipped_steps:  stop with an error once more optimizer steps than this had a non-finite loss or gradient.
    num_threads:        torch intra-op CPU threads per process (null: torch's default).
    tensorboard:        also write TensorBoard event files (needs the `tensorboard` package).
    resources:          what the Snakemake rule requests and how it launches (nothing here changes the math):
                        gpus (per node; 0 = one CPU process), nodes (>1: srun + torchrun across nodes), threads
                        (CPU cores), mem_mb, runtime (minutes; a job killed at its limit resumes when rerun).
    """

    steps: int = 100
    micro_batch_size: int = 1
    grad_accum_steps: int = 1
    lr: float = 1e-4
    warmup_steps: int = 100
    decay: str = "cosine"
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    adam_eps: float = 1e-8
    grad_clip: float = 1.0
    deepspeed_config: str = "resources/deepspeed/zero2.json"
    precision: str = "auto"
    gradient_checkpointing: bool = True
    checkpoint_every: int = 50
    keep_checkpoints: int = 2
    eval_every: int = 0
    val_examples: int = 0
    val_batch_size: int = 1
    max_skipped_steps: int = 10
    num_threads: int | None = None
    tensorboard: bool = False
    resources: dict = field(default_factory=lambda: dict(DEFAULT_RESOURCES))

    def __post_init__(self) -> None:
        self.adam_betas = [float(b) for b in self.adam_betas]
        self.validate()

    def validate(self) -> None:
        def fail(key: str, why: str) -> None:
            raise ValueError(f"pretrain.{key}: {why}")

        for key in ("steps", "micro_batch_size", "grad_accum_steps", "checkpoint_every", "keep_checkpoints",
                    "val_batch_size"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                fail(key, f"must be a positive integer, got {value!r}")
        for key in ("warmup_steps", "eval_every", "val_examples", "max_skipped_steps"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                fail(key, f"must be a non-negative integer, got {value!r}")
        for key in ("lr", "adam_eps"):
            if not float(getattr(self, key)) > 0:
                fail(key, f"must be > 0, got {getattr(self, key)!r}")
        for key in ("weight_decay", "grad_clip"):
            if float(getattr(self, key)) < 0:
                fail(key, f"must be >= 0, got {getattr(self, key)!r}")
        if not 0 <= self.min_lr_ratio <= 1:
            fail("min_lr_ratio", f"must lie in [0, 1], got {self.min_lr_ratio!r}")
        if len(self.adam_betas) != 2 or not all(0 <= b < 1 for b in self.adam_betas):
            fail("adam_betas", f"must be two numbers in [0, 1), got {self.adam_betas!r}")
        if self.decay not in DECAYS:
            fail("decay", f"unknown decay {self.decay!r}; choose one of {DECAYS}")
        if self.precision not in PRECISIONS:
            fail("precision", f"unknown precision {self.precision!r}; choose one of {PRECISIONS}")
        if self.num_threads is not None and (not isinstance(self.num_threads, int) or self.num_threads < 1):
            fail("num_threads", f"must be a positive integer or null, got {self.num_threads!r}")

        unknown = sorted(set(self.resources) - set(DEFAULT_RESOURCES))
        if unknown:
            fail("resources", f"unknown key(s) {unknown}; known keys are {sorted(DEFAULT_RESOURCES)}")
        self.resources = {**DEFAULT_RESOURCES, **self.resources}
        for key, value in self.resources.items():
            minimum = 0 if key == "gpus" else 1
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                fail(f"resources.{key}", f"must be an integer >= {minimum}, got {value!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict, section: str = "pretrain") -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{section}: unknown key(s) {unknown}; known keys are {sorted(known)}")
        return cls(**values)

    def lr_factor(self, step: int) -> float:
        """Learning-rate multiplier for optimizer step `step` (0-based): warmup, then decay to min_lr_ratio."""
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        if self.decay == "constant":
            return 1.0
        decay_steps = max(1, self.steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / decay_steps)
        if self.decay == "linear":
            shape = 1.0 - progress
        else:
            shape = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * shape
