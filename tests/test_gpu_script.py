"""benchmarks/gpu.py, the prepared GPU check, runs end to end on CPU in its --tiny mode (tiny shapes, fp32, ZeRO-2
on gloo, one step per run) and ends with one JSON object holding every number the GPU run reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 600
"""Generous on 2 shared cores (the run takes ~15 s alone)."""
TOP_KEYS = {
    "device",
    "tiny",
    "torch",
    "deepspeed",
    "dtype",
    "peak_tflops",
    "mfu_goal",
    "flop_formula",
    "layout",
    "svd_bench",
    "runs",
    "mfu_goal_met_by",
    "elapsed_s",
}
RUN_KEYS = {
    "model",
    "svd",
    "tokens_per_s",
    "positions_per_s",
    "step_time_s",
    "model_tflop_per_step",
    "recompute_tflop_per_step",
    "mfu",
    "hfu",
    "peak_mem_gib",
    "zero_stage",
    "bf16",
    "gradient_checkpointing",
    "svd_s_per_step_est",
    "mfu_goal_met",
}


@pytest.mark.slow
def test_gpu_script_tiny_run_ends_with_json():
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu.py"), "--tiny"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])

    assert TOP_KEYS <= set(result), TOP_KEYS - set(result)
    assert result["tiny"] and result["dtype"] == "float32"
    for method in ("exact", "lowrank"):
        assert result["svd_bench"][method]["fwd_s"] > 0 and result["svd_bench"][method]["fwd_bwd_s"] > 0

    runs = result["runs"]
    assert {(run["model"], run["svd"]) for run in runs} == {
        (model, svd) for model in ("tiny_llama", "tiny_mistral") for svd in ("exact", "lowrank")
    }
    for run in runs:
        assert "error" not in run and "skipped" not in run, run
        assert RUN_KEYS <= set(run), RUN_KEYS - set(run)
        assert run["zero_stage"] == 2 and run["bf16"] is False and run["gradient_checkpointing"]
        assert run["tokens_per_s"] > 0 and run["step_time_s"] > 0 and run["peak_mem_gib"] > 0
        assert 0 < run["mfu"] < run["hfu"]
        assert run["skipped_steps"] == 0 and all(loss == loss for loss in run["losses"])  # finite, not NaN
