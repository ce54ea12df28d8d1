"""Running the workflow in tests: a temporary copy of the workflow files (what a checkout holds), so the runs/ of the
tests (their outputs, logs and benchmark timings) never land in the repository, and Snakemake run on it as a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ("Snakefile", "rules", "config", "slurm", "workflow", "resources")
LOCAL_PROFILE = "workflow/profiles/default"
LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def workflow_env(extra: dict | None = None) -> dict:
    """The tests' environment, with this checkout's `ga` package first on the path (for jobs too)."""
    # a launcher's variables (left by an in-process run) would make every job join a process group that is not there
    env = {key: value for key, value in os.environ.items() if key not in LAUNCHER_VARIABLES}
    env.update(extra or {})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def checkout(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest / name)
    return dest


def snakemake(args: list[str], cwd: Path, env: dict | None = None, timeout: float = 900):
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=cwd,
        env=env or workflow_env(),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )


def explain(result, root: Path | None = None) -> str:
    """A failed run's output plus the ends of its rule logs and SLURM job logs."""
    text = f"exit {result.returncode}\n--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-8000:]}"
    if root is not None:
        for log in sorted((root / "runs").glob("*/logs/*.log")) + sorted(
            (root / ".snakemake" / "slurm_logs").rglob("*.log")
        ):
            text += f"\n--- {log.relative_to(root)}\n{log.read_text(errors='replace')[-3000:]}"
    return text
