"""Reading a run config loads none of the work code (issue 23): every Snakemake start and every `ga` command reads
one, so the config sections live apart from the code that uses them and import only light modules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "polars", "pandera", "pyarrow", "numpy", "pandas")
"""Libraries that take from a tenth of a second to seconds to import; none is needed to read a config."""


def modules_after(statement: str) -> list[str]:
    """The top-level names of the modules loaded by a fresh interpreter after `statement`."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_reading_a_run_config_imports_no_heavy_library():
    loaded = modules_after("from ga.run_config import RunConfig; RunConfig.load('config/smoke.yaml')")
    assert sorted({name.split(".")[0] for name in loaded} & set(HEAVY)) == []


def test_reading_a_run_config_imports_no_work_code_of_the_data_stages():
    loaded = set(modules_after("import ga.run_config"))
    work = {
        "ga.data.sft.mixture",
        "ga.data.sft.records",
        "ga.data.contracts",
        "ga.data.sft.embedded.registry",
        "ga.data.sft.sources",
        "ga.format",
    }
    assert sorted(loaded & work) == []
