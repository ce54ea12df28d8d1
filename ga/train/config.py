"""Training hyperparameters: `TrainConfig` (what every run of the training loop takes), `PretrainConfig` (the `pretrain`
section: plus the pretraining objective's own keys) and `FinetuneConfig` (the `finetune` section: plus epochs and
the greedy-generation check)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from ga.resources import Resources
from ga.section import ConfigError, ConfigSection, setting

DECAYS = ("cosine", "linear", "constant")
PRECISIONS = ("auto", "bf16", "fp32")
GENERATOR_PARTS = ("norm_weight", "A2", "A3", "A1", "B")
"""The parameter names of one module's generator (ga/generator.py), which `lr_multipliers` keys name: context side
(gain, key and value maps), then delta side."""
LOSS_PARTS = ("completion", "reconstruction")
"""Parts of the pretraining objective that can carry the training loss (docs/method.md#pretraining-ablations)."""


@dataclass
class TrainConfig(ConfigSection):
    """One training run of the generator on a DeepSpeed engine (docs/method.md#training)."""

    section: ClassVar[str] = "pretrain"
    """The run config section these settings come from: the training loop names keys by it in its errors."""

    steps: int = setting(
        100, "optimizer steps in the whole run (a resumed run continues towards the same total)", minimum=1
    )
    micro_batch_size: int = setting(1, "examples per process per forward/backward pass", minimum=1)
    grad_accum_steps: int = setting(
        1, "micro-batches per optimizer step; global batch = micro x accum x processes", minimum=1
    )
    lr: float = setting(1e-4, "peak learning rate of AdamW", exclusive_minimum=0)
    lr_multipliers: dict[str, float] = setting(
        {}, "per generator part (norm_weight, A2, A3, A1, B): a factor on lr and its schedule; parts not named take 1"
    )
    warmup_steps: int = setting(100, "linear warmup from 0 to lr over this many steps", minimum=0)
    decay: str = setting(
        "cosine", "after warmup: cosine or linear down to min_lr_ratio * lr at `steps`, or constant", choices=DECAYS
    )
    min_lr_ratio: float = setting(0.1, "floor of the decay as a fraction of lr", minimum=0, maximum=1)
    weight_decay: float = setting(0.01, "AdamW decoupled weight decay (never on norm gains)", minimum=0)
    adam_betas: list[float] = setting(
        [0.9, 0.999], "AdamW moment decay rates", min_items=2, minimum=0, exclusive_maximum=1
    )
    adam_eps: float = setting(1e-8, "AdamW denominator epsilon", exclusive_minimum=0)
    grad_clip: float = setting(1.0, "global gradient-norm clipping threshold (0 disables clipping)", minimum=0)
    deepspeed_config: str = setting(
        "resources/deepspeed/zero2.json",
        "JSON with the ZeRO settings "
        "(resources/deepspeed/zero{0,2,3}.json); batch sizes, clipping and precision come "
        "from this section and must not appear in the file",
    )
    precision: str = setting("auto", "auto (bf16 on GPU, fp32 on CPU), bf16 or fp32", choices=PRECISIONS)
    gradient_checkpointing: bool = setting(
        True, "recompute the base model's activations in backward (non-reentrant), trading time for memory"
    )
    checkpoint_every: int = setting(
        50, "save a resumable checkpoint every this many steps (and at the end)", minimum=1, affects_output=False
    )
    keep_checkpoints: int = setting(
        2, "how many most recent checkpoints to keep on disk", minimum=1, affects_output=False
    )
    eval_every: int = setting(0, "validate every this many steps (0: only at the end)", minimum=0, resume_safe=True)
    val_examples: int = setting(
        0, "held-out examples used per validation (0: all of them)", minimum=0, resume_safe=True
    )
    val_batch_size: int = setting(
        1, "examples (or documents, for the paper's protocol) per validation forward pass", minimum=1, resume_safe=True
    )
    max_skipped_steps: int = setting(
        10,
        "stop with an error once more optimizer steps than this had a non-finite loss or gradient",
        minimum=0,
        affects_output=False,
    )
    num_threads: int | None = setting(
        None, "torch intra-op CPU threads per process (null: torch's default)", minimum=1, affects_output=False
    )
    tensorboard: bool = setting(
        False, "also write TensorBoard event files (needs the tensorboard package)", affects_output=False
    )
    resources: Resources = setting(default_factory=Resources, doc="what the rule requests and how it launches")

    def __post_init__(self) -> None:
        self.adam_betas = [float(b) if isinstance(b, int) and not isinstance(b, bool) else b for b in self.adam_betas]
        if isinstance(self.resources, dict):  # built directly (not via from_dict) with a plain mapping
            self.resources = Resources.from_dict(self.resources, "resources")
        super().__post_init__()

    def check(self) -> None:
        if len(self.adam_betas) != 2:
            raise ConfigError(f"adam_betas: must be two numbers in [0, 1), got {self.adam_betas!r}")
        for part, factor in self.lr_multipliers.items():
            if part not in GENERATOR_PARTS:
                raise ConfigError(f"lr_multipliers.{part}: not a generator part (one of {', '.join(GENERATOR_PARTS)})")
            if not factor > 0:
                raise ConfigError(f"lr_multipliers.{part}: must be > 0, got {factor!r}")

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


@dataclass
class PretrainConfig(TrainConfig):
    """Pretraining the generator (docs/method.md#pretraining-objective): the loop's settings plus the pretraining
    objective's own."""

    loss_parts: list[str] = setting(
        list(LOSS_PARTS),
        "parts of the pretraining objective whose labels the training "
        "loss covers: completion and/or reconstruction (the paper's ablations train one "
        "alone); validation scores every part",
        min_items=1,
    )
    paper_val_documents: int = setting(
        0,
        "held-out documents scored by the paper's Table 2 protocol, in stored "
        "order, among those of at least two windows (0: all of them)",
        minimum=0,
        resume_safe=True,
    )

    def check(self) -> None:
        super().check()
        unknown = [part for part in self.loss_parts if part not in LOSS_PARTS]
        if unknown or len(set(self.loss_parts)) != len(self.loss_parts):
            raise ConfigError(f"loss_parts: must be distinct names among {list(LOSS_PARTS)}, got {self.loss_parts!r}")


@dataclass
class FinetuneConfig(TrainConfig):
    """Instruction tuning from the pretrained generator (docs/method.md#instruction-tuning): the loop's settings,
    the run length in epochs, and the greedy-generation check at the end."""

    section: ClassVar[str] = "finetune"

    epochs: float | None = setting(
        None,
        "when set, the run length in passes over the training mixture: steps = "
        "ceil(epochs x training records / global batch), replacing `steps` (the "
        "mixture's size is known only once sft_data ran)",
        exclusive_minimum=0,
    )
    generation_records: int = setting(
        8,
        "held-out records per dataset whose first question is answered greedily "
        "(own / other / no adapter) for the answer-F1 check (0: no check)",
        minimum=0,
        resume_safe=True,
    )
    max_new_tokens: int = setting(32, "most tokens generated per answer in the F1 check", minimum=1, resume_safe=True)

    def run_steps(self, train_records: int, world_size: int) -> int:
        """Optimizer steps of the run: `steps`, or `epochs` over `train_records` when epochs is set."""
        if self.epochs is None:
            return self.steps
        per_step = self.micro_batch_size * self.grad_accum_steps * world_size
        return max(1, math.ceil(self.epochs * train_records / per_step))
