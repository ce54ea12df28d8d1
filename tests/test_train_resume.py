"""Training as separate processes: killed and resumed == uninterrupted; two processes (torchrun, gloo) == one process
with the same global batch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DRIVER = "train_driver"
"""The driver module, run as `python -m train_driver` (or `torchrun -m`) in tests/, where it finds tiny_models."""


def driver_env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)  # a plain driver process must form its own one-process group
    return env


def final_weights(state: Path, step: int) -> dict[str, torch.Tensor]:
    return load_file(str(state / "checkpoints" / f"step-{step:08d}" / "generator" / "generator.safetensors"))


def run_driver(state: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", DRIVER, str(state), str(state / "result.json"), *args],
        cwd=HERE,
        env=driver_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    steps, every = 40, 5
    args = ("--stage", "2", "--steps", str(steps), "--checkpoint-every", str(every))
    reference = tmp_path / "reference"
    run_driver(reference, *args)

    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    log = (interrupted / "first.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", DRIVER, str(interrupted), str(interrupted / "result.json"), *args],
        cwd=HERE,
        env=driver_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    first_checkpoint = interrupted / "checkpoints" / f"step-{every:08d}"
    deadline = time.monotonic() + 300
    while not first_checkpoint.is_dir() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # like a SLURM job at its time limit (without the grace period)
    proc.wait()
    log.close()
    assert first_checkpoint.is_dir(), (interrupted / "first.log").read_text()[-3000:]
    assert not (interrupted / "result.json").exists(), "the run finished before it could be killed"
    killed_at = sorted(p.name for p in (interrupted / "checkpoints").iterdir())

    resumed = run_driver(interrupted, *args)
    assert "resumed from" in resumed.stdout, (killed_at, resumed.stdout[-2000:])
    expected, got = final_weights(reference, steps), final_weights(interrupted, steps)
    assert set(expected) == set(got)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], atol=1e-6, rtol=1e-5)
    # one metrics row per step, no duplicates from the killed attempt
    steps_logged = [
        json.loads(line)["step"]
        for line in (interrupted / "metrics.jsonl").read_text().splitlines()
        if json.loads(line)["kind"] == "train"
    ]
    assert steps_logged == list(range(1, steps + 1))
    ref_result = json.loads((reference / "result.json").read_text())
    got_result = json.loads((interrupted / "result.json").read_text())
    assert got_result["own_reconstruction_ppl"] == pytest.approx(ref_result["own_reconstruction_ppl"], rel=1e-5)


@pytest.mark.slow
def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    """torchrun --nproc_per_node 2 with ZeRO-2 (gradients reduce-scattered over gloo, optimizer state partitioned)
    computes what one process computes accumulating the same two micro-batches per step."""
    steps = 4
    two = tmp_path / "two"
    subprocess.run(
        [
            "torchrun",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            DRIVER,
            str(two),
            str(two / "result.json"),
            "--stage",
            "2",
            "--steps",
            str(steps),
            "--checkpoint-every",
            "2",
            "--micro",
            "1",
            "--accum",
            "1",
        ],
        cwd=HERE,
        env=driver_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    one = tmp_path / "one"
    run_driver(one, "--stage", "2", "--steps", str(steps), "--checkpoint-every", "2", "--micro", "1", "--accum", "2")
    assert json.loads((two / "result.json").read_text())["world_size"] == 2
    assert (
        two / "checkpoints" / f"step-{steps:08d}" / "deepspeed" / "engine" / "zero_pp_rank_1_mp_rank_00_optim_states.pt"
    ).is_file()
    expected, got = final_weights(one, steps), final_weights(two, steps)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], atol=1e-5, rtol=1e-4)
