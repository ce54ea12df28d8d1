"""docs/tutorial.md cannot rot: every `bash` block runs, in order, in a copy of the workflow files, on the smoke config
(a tiny random base model: minutes instead of the embedded default's half hour). Slow: it trains the smoke generator.

The blocks run as written except for SMOKE_RUN's substitutions (the smoke config, its run folder) and the setup line,
which installs the environment the test already runs in. `ga` is this checkout's command line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TUTORIAL = REPO / "docs" / "tutorial.md"
WORKFLOW_FILES = ("Snakefile", "rules", "config", "slurm", "workflow", "resources")
SMOKE_RUN = [
    (
        "snakemake --profile workflow/profiles/default",
        "snakemake --configfile config/smoke.yaml --profile workflow/profiles/default",
    ),  # --configfile takes several
    ("runs/default/", "runs/smoke/"),
]
SETUP_LINE = "bash scripts/setup.sh"
BLOCK_TIMEOUT_S = 1800


def bash_blocks(text: str) -> list[str]:
    """The ```bash blocks of a Markdown text, in order (```console blocks are shown, not run)."""
    return re.findall(r"^```bash\n(.*?)^```$", text, flags=re.S | re.M)


def runnable(block: str, substitutions: list[tuple[str, str]]) -> str:
    lines = [line for line in block.splitlines() if line.strip() != SETUP_LINE]
    script = "\n".join(lines) + "\n"
    for old, new in substitutions:
        script = script.replace(old, new)
    return script


def ga_on_path(bin_dir: Path) -> dict:
    """The environment with a `ga` command that runs this checkout's command line."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "ga"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m ga.cli "$@"\n')
    shim.chmod(0o755)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    }
    env["PATH"] = f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def test_tutorial_has_the_steps_it_promises():
    blocks = bash_blocks(TUTORIAL.read_text())
    commands = " ".join(blocks)
    for step in (
        "snakemake --profile workflow/profiles/default",
        "ga adapt",
        "ga ask",
        "ga chat",
        "ga export-peft",
        "PeftModel.from_pretrained",
    ):
        assert step in commands, step


@pytest.mark.slow
def test_tutorial_runs_on_the_smoke_config(tmp_path):
    root = tmp_path / "clone"
    root.mkdir()
    for name in WORKFLOW_FILES:
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, root / name)
    env = ga_on_path(tmp_path / "bin")
    for number, block in enumerate(bash_blocks(TUTORIAL.read_text()), start=1):
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", runnable(block, SMOKE_RUN)],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=BLOCK_TIMEOUT_S,
        )
        assert result.returncode == 0, (
            f"block {number} failed ({result.returncode}):\n{block}\n--- stdout\n"
            f"{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-5000:]}"
        )
        assert "Traceback" not in result.stderr, result.stderr[-3000:]
    tutorial = root / "runs" / "tutorial"
    assert (tutorial / "orvanne.adapter.safetensors").is_file()
    assert len(json.loads((tutorial / "chat.json").read_text())["messages"]) == 4  # two questions, two replies
    assert json.loads((tutorial / "orvanne_lora" / "adapter_config.json").read_text())["peft_type"] == "LORA"
