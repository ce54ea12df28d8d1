"""Resumable training checkpoints.

Layout of one checkpoint, `<state_dir>/checkpoints/step-<N>/` (built in a `ga.io.atomic_dir` and renamed into place
when complete, so a kill mid-save never leaves a checkpoint that looks valid):
    generator/                a GenerativeAdapter.save_pretrained folder of the full fp32 generator weights (the
                              optimizer's master copies), nothing of the base model: `from_pretrained` loads it
    rng-rank<r>.safetensors   each process's torch RNG state(s)
    trainer_state.json        step, skipped steps, examples consumed (the data position), run fingerprint
    deepspeed/                DeepSpeed's own engine checkpoint with frozen parameters excluded: optimizer moments
                              (partitioned per rank under ZeRO) and engine counters, written by this run
The learning rate is a pure function of the step (TrainConfig.lr_factor), so the step is the scheduler state.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ga.io import atomic_dir, read_json, write_json
from ga.model import GENERATOR_WEIGHTS
from ga.train.distributed import Dist

STATE_DIR = "state"
"""A training stage's checkpoints and live metrics log, in this folder beside its outputs (not a rule output, so a
killed job keeps it and a rerun resumes)."""
CHECKPOINT_PATTERN = re.compile(r"^step-(\d+)$")
TRAINER_STATE = "trainer_state.json"
GENERATOR_DIR = "generator"
ENGINE_DIR = "deepspeed"
ENGINE_TAG = "engine"


def state_dir_beside(generator_dir: str | Path) -> Path:
    """The STATE_DIR of the training stage whose generator folder is `generator_dir`."""
    return Path(generator_dir).parent / STATE_DIR


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


def read_trainer_state(checkpoint: Path) -> dict:
    return read_json(Path(checkpoint) / TRAINER_STATE)


def generator_master_weights(model) -> dict[str, torch.Tensor]:
    """Full fp32 generator weights on the CPU, keyed as `model.generators.state_dict()`. A collective call.

    Where DeepSpeed keeps master copies (ZeRO partitions, bf16 training) they are gathered from every rank;
    otherwise the module's own fp32 values are whole already.
    """
    from deepspeed.utils import safe_get_full_fp32_param

    weights = {}
    for name, param in model.generators.named_parameters():
        full = safe_get_full_fp32_param(param)
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


@contextlib.contextmanager
def shared_atomic_dir(target: Path, dist_info: Dist) -> Iterator[Path]:
    """`ga.io.atomic_dir` for a folder that every process writes into: the main process owns the temporary folder
    and publishes it once all processes are done (a collective call; the folder must be on a shared file system)."""
    with atomic_dir(target) if dist_info.is_main else contextlib.nullcontext() as tmp:
        tmp = Path(dist_info.broadcast_object(str(tmp) if dist_info.is_main else None))
        yield tmp
        dist_info.barrier()  # every process has written its part before the folder is renamed into place


def save_checkpoint(engine, model, state_dir: Path, step: int, trainer_state: dict, keep: int, dist_info: Dist) -> Path:
    """Write checkpoint `step` (a collective call) and keep only the `keep` most recent ones."""
    final = checkpoints_dir(state_dir) / f"step-{step:08d}"
    with shared_atomic_dir(final, dist_info) as tmp:
        engine.save_checkpoint(str(tmp / ENGINE_DIR), tag=ENGINE_TAG, save_latest=False, exclude_frozen_parameters=True)
        save_file(_rng_state(), str(tmp / f"rng-rank{dist_info.rank}.safetensors"))
        weights = generator_master_weights(model)
        if dist_info.is_main:
            model.save_pretrained(tmp / GENERATOR_DIR, weights=weights)
            write_json(trainer_state, tmp / TRAINER_STATE, sort_keys=False)
    if dist_info.is_main:
        for _, old in completed_checkpoints(state_dir)[:-keep]:
            shutil.rmtree(old)
    dist_info.barrier()
    return final


def load_checkpoint(engine, model, path: Path, dist_info: Dist) -> dict:
    """Restore engine (weights, optimizer moments), RNG and trainer state from checkpoint `path`; returns the latter.

    The generator weights in the checkpoint's save_pretrained folder must agree with what the engine restored: a
    mismatch means the checkpoint is inconsistent and is reported rather than trained on.
    """
    path = Path(path)
    load_path, _ = engine.load_checkpoint(
        str(path / ENGINE_DIR),
        tag=ENGINE_TAG,
        load_module_strict=False,
        load_optimizer_states=True,
        load_lr_scheduler_states=False,
    )
    if load_path is None:
        raise RuntimeError(f"{path / ENGINE_DIR}: DeepSpeed could not load the engine checkpoint")
    weights_file = path / GENERATOR_DIR / GENERATOR_WEIGHTS
    saved = load_file(str(weights_file))
    restored = generator_master_weights(model)
    if set(saved) != set(restored):
        raise RuntimeError(
            f"{weights_file}: parameter names differ from the model's generator: "
            f"missing {sorted(set(restored) - set(saved))[:5]}, "
            f"unexpected {sorted(set(saved) - set(restored))[:5]}"
        )
    for name, value in saved.items():
        if not torch.equal(value, restored[name]):
            raise RuntimeError(
                f"{path}: generator weight {name!r} in {weights_file} differs from the DeepSpeed engine checkpoint"
            )
    rng_file = path / f"rng-rank{dist_info.rank}.safetensors"
    if rng_file.is_file():
        _set_rng_state(load_file(str(rng_file)))
    return read_trainer_state(path)
