"""Resumable training checkpoints.

Layout of one checkpoint, `<state_dir>/checkpoints/step-<N>/` (written under a `.tmp` name and renamed when complete,
so a kill mid-save never leaves a checkpoint that looks valid):
    generator.safetensors     the generator's trainable weights (full fp32 values), nothing of the base model
    generator_config.json     the GenerativeAdapterConfig
    rng-rank<r>.safetensors   each process's torch RNG state(s)
    trainer_state.json        step, skipped steps, examples consumed (the data position), run fingerprint
    deepspeed/                DeepSpeed's own engine checkpoint with frozen parameters excluded: optimizer moments
                              (partitioned per rank under ZeRO) and engine counters, written by this run
The learning rate is a pure function of the step (TrainConfig.lr_factor), so the step is the scheduler state.
"""
from __future__ import annotations

import json
import re
import shutil
from contextlib import nullcontext
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ga.train.distributed import Dist

CHECKPOINT_PATTERN = re.compile(r"^step-(\d+)$")
TRAINER_STATE = "trainer_state.json"
GENERATOR_WEIGHTS = "generator.safetensors"
ENGINE_DIR = "deepspeed"
ENGINE_TAG = "engine"


def checkpoints_dir(state_dir: Path) -> Path:
    return Path(state_dir) / "checkpoints"


def completed_checkpoints(state_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of every complete checkpoint, oldest first."""
    root = checkpoints_dir(state_dir)
    found = []
    if root.is_dir():
        for path in root.iterdir():
            match = CHECKPOINT_PATTERN.match(path.name)
            if match and (path / TRAINER_STATE).is_file():
                found.append((int(match.group(1)), path))
    return sorted(found)


def trainable_named_parameters(model: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    return [(name, p) for name, p in model.named_parameters() if p.requires_grad]


def full_fp32_generator_weights(model: torch.nn.Module, zero_stage: int) -> dict[str, torch.Tensor]:
    """Full (unpartitioned) fp32 values of the trainable parameters; a collective call: every rank must call it."""
    from deepspeed.utils import safe_get_full_fp32_param

    weights = {}
    for name, param in trainable_named_parameters(model):
        full = safe_get_full_fp32_param(param)  # ZeRO master weights; None where the module holds them itself
        if full is None:
            full = param.detach()
        weights[name] = full.detach().to("cpu", torch.float32).contiguous().clone()
    return weights


def _rng_state() -> dict[str, torch.Tensor]:
    state = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["torch_cuda"] = torch.cuda.get_rng_state()
    return state


def _set_rng_state(state: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(state["torch_cpu"])
    if torch.cuda.is_available() and "torch_cuda" in state:
        torch.cuda.set_rng_state(state["torch_cuda"])


def save_checkpoint(engine, model, state_dir: Path, step: int, trainer_state: dict, keep: int, zero_stage: int,
                    dist_info: Dist) -> Path:
    """Write checkpoint `step` (a collective call) and keep only the `keep` most recent ones."""
    root = checkpoints_dir(state_dir)
    final = root / f"step-{step:08d}"
    tmp = root / f"step-{step:08d}.tmp"
    if dist_info.is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    dist_info.barrier()
    engine.save_checkpoint(str(tmp / ENGINE_DIR), tag=ENGINE_TAG, save_latest=False, exclude_frozen_parameters=True)
    save_file(_rng_state(), str(tmp / f"rng-rank{dist_info.rank}.safetensors"))
    weights = full_fp32_generator_weights(model, zero_stage)
    if dist_info.is_main:
        save_file(weights, str(tmp / GENERATOR_WEIGHTS))
        model.config.save(tmp / "generator_config.json")
        (tmp / TRAINER_STATE).write_text(json.dumps(trainer_state, indent=2) + "\n")
    dist_info.barrier()
    if dist_info.is_main:
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for _, old in completed_checkpoints(state_dir)[:-keep]:
            shutil.rmtree(old)
    dist_info.barrier()
    return final


def load_checkpoint(engine, model, path: Path, zero_stage: int, dist_info: Dist) -> dict:
    """Restore engine (weights, optimizer moments), RNG and trainer state from checkpoint `path`; returns the latter.

    The generator weights in the safetensors file must agree with what the engine restored: a mismatch means the
    checkpoint is inconsistent and is reported rather than trained on.
    """
    path = Path(path)
    load_path, _ = engine.load_checkpoint(str(path / ENGINE_DIR), tag=ENGINE_TAG, load_module_strict=False,
                                          load_optimizer_states=True, load_lr_scheduler_states=False)
    if load_path is None:
        raise RuntimeError(f"{path / ENGINE_DIR}: DeepSpeed could not load the engine checkpoint")
    saved = load_file(str(path / GENERATOR_WEIGHTS))
    restored = full_fp32_generator_weights(model, zero_stage)
    if set(saved) != set(restored):
        raise RuntimeError(f"{path / GENERATOR_WEIGHTS}: parameter names differ from the model's generator: "
                           f"missing {sorted(set(restored) - set(saved))[:5]}, "
                           f"unexpected {sorted(set(saved) - set(restored))[:5]}")
    for name, value in saved.items():
        if not torch.equal(value, restored[name]):
            raise RuntimeError(f"{path}: generator weight {name!r} in {GENERATOR_WEIGHTS} differs from the "
                               f"DeepSpeed engine checkpoint")
    rng_file = path / f"rng-rank{dist_info.rank}.safetensors"
    if rng_file.is_file():
        _set_rng_state(load_file(str(rng_file)))
    return json.loads((path / TRAINER_STATE).read_text())


def gathered(model, zero_stage: int):
    """Context in which ZeRO-3 partitioned generator parameters are whole (no-op for other stages)."""
    if zero_stage != 3:
        return nullcontext()
    import deepspeed

    return deepspeed.zero.GatheredParameters([p for _, p in trainable_named_parameters(model)], modifier_rank=None)
