"""The data stage as Snakemake rules: the DAG for the paper config, and the smoke config end to end, with
staleness (window layout -> examples stale; budget -> documents stale; a generator/training value -> neither)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def snakemake(workdir: Path, configfile: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
         "--configfile", str(configfile), "-c2", *args],
        capture_output=True, text=True, env=env, cwd=workdir)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def planned_jobs(output: str) -> dict[str, int]:
    if "Nothing to be done" in output:
        return {}
    table = output.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)}


def test_dry_run_shows_the_data_stage_for_the_paper_config(tmp_path):
    out = snakemake(tmp_path, REPO / "config" / "paper-mistral.yaml", "-n", "pretrain_data")
    jobs = planned_jobs(out)
    assert jobs == {"fetch_base": 1, "pretrain_documents": 1, "pretrain_data": 1}
    assert "runs/paper-mistral/data/pretrain/train" in out and "runs/paper-mistral/data/pretrain/val" in out


@pytest.mark.slow
def test_smoke_config_runs_pretrain_data_end_to_end(tmp_path):
    smoke = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    config = tmp_path / "smoke.yaml"
    config.write_text(yaml.safe_dump(smoke))
    snakemake(tmp_path, config, "pretrain_data")
    data = tmp_path / "runs" / "smoke" / "data" / "pretrain"
    from ga.data.pretrain import load_examples, read_manifest

    section = smoke["pretrain_data"]
    S = section["completion_windows"] + section["reconstruction_windows"]
    for split in ("train", "val"):
        manifest = read_manifest(data / split)
        assert manifest["examples"] >= 1 and manifest["layout"]["num_windows"] == S
        batch = load_examples(data / split)
        assert batch["input_ids"].shape == (manifest["examples"], S, section["window"])
    assert (tmp_path / "logs" / "smoke" / "pretrain_data.log").exists()
    assert (tmp_path / "benchmarks" / "smoke" / "pretrain_data.tsv").exists()

    def plan_with(**changes) -> dict[str, int]:
        changed = yaml.safe_load(yaml.safe_dump(smoke))
        for dotted, value in changes.items():
            section_name, key = dotted.split("__")
            changed[section_name][key] = value
        path = tmp_path / "changed.yaml"
        path.write_text(yaml.safe_dump(changed))
        return planned_jobs(snakemake(tmp_path, path, "-n", "pretrain_data"))

    assert plan_with() == {}
    assert plan_with(adapter__alpha=4) == {}  # a generator hyperparameter: data stays up to date
    assert plan_with(pretrain_data__window=16, adapter__window=16) == {"pretrain_data": 1}
    assert plan_with(pretrain_data__reconstruction_windows=2) == {"pretrain_data": 1}
    assert plan_with(pretrain_data__token_budget=5000) == {"pretrain_documents": 1, "pretrain_data": 1}


@pytest.mark.parametrize("key, value, message", [
    ("reconstruction_windows", 9, "pretrain_data: reconstruction_windows must be in [0, completion_windows=4]"),
    ("source", "pile", "pretrain_data.source"),
    ("windw", 3, "pretrain_data.windw: unknown key"),
])
def test_config_validation_names_bad_pretrain_data_keys(key, value, message):
    from ga.pipeline.config import ConfigError, validate_config

    config = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    config["pretrain_data"][key] = value
    with pytest.raises(ConfigError) as err:
        validate_config(config, REPO / "config" / "schema.yaml", "smoke")
    assert message in str(err.value)


def test_every_config_has_a_valid_pretrain_data_section():
    from ga.data.config import PretrainDataConfig
    from ga.pipeline.config import validate_config

    for path in sorted((REPO / "config").glob("*.yaml")):
        if path.name == "schema.yaml":
            continue
        config = yaml.safe_load(path.read_text())
        validate_config(config, REPO / "config" / "schema.yaml", path.name)
        PretrainDataConfig.from_dict(config["pretrain_data"], seed=config["seed"])
