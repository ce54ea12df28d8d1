"""The pipeline's spine: config validation, the DAG of every config, rerunning only stale stages, and the smoke
DAG end to end, locally and through `--profile slurm` on a real one-node SLURM cluster.

Snakemake runs in a temporary copy of the workflow files (what a checkout holds), so runs/, logs/ and
benchmarks/ of the tests never land in the repository.

When a rules file adds a stage, extend EXPECTED_JOBS and STALE_AFTER_CHANGE below.
"""
from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ga.pipeline.config import ConfigError, validate_config

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "config" / "schema.yaml"
CONFIGS = sorted(p.name for p in (REPO / "config").glob("*.yaml") if p.name != "schema.yaml")
WORKFLOW_FILES = ("Snakefile", "rules", "config", "slurm", "workflow", "resources")
LOCAL_PROFILE = "workflow/profiles/default"

# Jobs `snakemake -n` plans for a fresh run of each config (rule -> count); `all` is the target rule.
EXPECTED_JOBS = {
    name: {"fetch_base": 1, "pretrain_documents": 1, "pretrain_data": 1, "pretrain": 1, "report": 1, "all": 1}
    for name in CONFIGS
}

# After a complete smoke run, changing one config value (dotted key -> new value) must make exactly these
# rules stale (besides the `all` target, which always runs).
STALE_AFTER_CHANGE = [
    # a new base model dir may carry a new tokenizer, so the data stages downstream of it rerun
    ("base_model.random_config.hidden_size", 32, {"fetch_base", "pretrain_documents", "pretrain_data", "pretrain", "report"}),
    ("seed", 1, {"fetch_base", "pretrain_documents", "pretrain_data", "pretrain", "report"}),
    ("adapter.alpha", 4, {"pretrain", "report"}),  # the generator's shape/scale: training, never data
    ("pretrain.lr", 1.0e-4, {"pretrain", "report"}),  # a training hyperparameter never reruns data preparation
    ("pretrain_data.reconstruction_windows", 2, {"pretrain_data", "pretrain", "report"}),  # layout: examples on
    ("pretrain_data.token_budget", 5000, {"pretrain_documents", "pretrain_data", "pretrain", "report"}),
]


def load(name: str) -> dict:
    return yaml.safe_load((REPO / "config" / name).read_text())


def set_key(config: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        config = config[key]
    config[last] = value


def test_shipped_configs_are_valid_and_runs_are_separate():
    run_names = {}
    for name in CONFIGS:
        config = load(name)
        validate_config(config, SCHEMA, source=name)
        run_names.setdefault(config["run_name"], []).append(name)
    assert {"config.yaml", "smoke.yaml", "paper-mistral.yaml", "paper-llama2.yaml"} <= set(CONFIGS)
    assert all(len(names) == 1 for names in run_names.values()), f"configs share a run_name: {run_names}"


def test_paper_configs_match_the_paper():
    """SPEC §2: o_proj, inter size 1024, rank 128, window 1024; scale 1/16 (Mistral) and 1/8 (Llama-2)."""
    for name, model, scale in (("paper-mistral.yaml", "mistralai/Mistral-7B-Instruct-v0.2", 1 / 16),
                               ("paper-llama2.yaml", "meta-llama/Llama-2-7b-chat-hf", 1 / 8)):
        config = load(name)
        adapter = config["adapter"]
        assert config["base_model"]["source"] == "hub" and config["base_model"]["id"] == model
        assert (adapter["inter_size"], adapter["rank"], adapter["window"]) == (1024, 128, 1024)
        assert adapter["target_modules"] == ["o_proj"] and adapter["norm"] == "svd"
        assert adapter["alpha"] / adapter["inter_size"] == scale


BAD_CONFIGS = [
    # (what is wrong, mutation of smoke.yaml, text the error must contain)
    ("unknown top-level key", lambda c: c.update(learning_rate=1e-4), "learning_rate: unknown key"),
    ("unknown nested key", lambda c: c["adapter"].update(ranks=4), "adapter.ranks: unknown key"),
    ("wrong type", lambda c: set_key(c, "adapter.rank", "four"), "adapter.rank: 'four' is not of type 'integer'"),
    ("wrong container type", lambda c: set_key(c, "adapter.target_modules", "o_proj"), "adapter.target_modules:"),
    ("null value", lambda c: set_key(c, "seed", None), "seed: None is not of type 'integer'"),
    ("missing value", lambda c: c["adapter"].pop("window"), "adapter.window: missing"),
    ("missing section", lambda c: c.pop("base_model"), "base_model: missing"),
    ("value outside the choices", lambda c: set_key(c, "base_model.source", "s3"), "base_model.source: 's3'"),
    ("out of range", lambda c: set_key(c, "adapter.inter_size", 0), "adapter.inter_size: 0 is less than"),
    ("run name escaping runs/", lambda c: set_key(c, "run_name", "../x"), "run_name: '../x' does not match"),
    ("rank above inter size", lambda c: set_key(c, "adapter.rank", 64), "adapter: GenerativeAdapterConfig.rank"),
    ("dead random_config", lambda c: set_key(c, "base_model.source", "embedded"), "base_model.random_config:"),
    ("adapter and data windows differ", lambda c: set_key(c, "adapter.window", 16), "adapter.window (16) must equal"),
]


@pytest.mark.parametrize("what,mutate,message", BAD_CONFIGS, ids=[b[0] for b in BAD_CONFIGS])
def test_schema_rejects_bad_config(what, mutate, message):
    config = load("smoke.yaml")
    mutate(config)
    with pytest.raises(ConfigError) as err:
        validate_config(config, SCHEMA, source="bad.yaml")
    assert message in str(err.value), str(err.value)
    assert "bad.yaml" in str(err.value)


# --- Snakemake itself ---------------------------------------------------------------------------------------

def workflow_env(extra: dict | None = None) -> dict:
    """The tests' environment, with this checkout's `ga` package first on the path (for jobs too)."""
    env = dict(os.environ, **(extra or {}))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def checkout(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest / name)
    return dest


def snakemake(args: list[str], cwd: Path, env: dict | None = None, timeout: float = 900):
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, env=env or workflow_env(),
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout)


def planned_jobs(result) -> dict[str, int]:
    """rule -> count from the 'Job stats' table of a (dry) run; {} when there is nothing to do."""
    text = result.stdout + result.stderr
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:", 1)[1]
    jobs = {}
    for line in table.splitlines()[3:]:
        fields = line.split()
        if len(fields) != 2 or fields[0] == "total":
            break
        jobs[fields[0]] = int(fields[1])
    return jobs


def explain(result, root: Path | None = None) -> str:
    """A failed run's output plus the ends of its rule logs and SLURM job logs."""
    text = f"exit {result.returncode}\n--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-8000:]}"
    if root is not None:
        for log in sorted((root / "logs").rglob("*.log")) + sorted((root / ".snakemake" / "slurm_logs").rglob("*.log")):
            text += f"\n--- {log.relative_to(root)}\n{log.read_text(errors='replace')[-3000:]}"
    return text


@pytest.fixture(scope="module")
def dry_checkout(tmp_path_factory) -> Path:
    return checkout(tmp_path_factory.mktemp("dry"))


@pytest.mark.parametrize("name", CONFIGS)
def test_dry_run_lists_expected_jobs(dry_checkout, name):
    args = ["-n", "--cores", "1"] + ([] if name == "config.yaml" else ["--configfile", f"config/{name}"])
    result = snakemake(args, dry_checkout)
    assert result.returncode == 0, explain(result)
    assert planned_jobs(result) == EXPECTED_JOBS[name]
    run_name = load(name)["run_name"]
    outputs = set(re.findall(r"output: (\S+)", result.stdout))
    assert outputs and all(o.startswith(f"runs/{run_name}/") for o in outputs), outputs
    assert not (dry_checkout / "runs").exists(), "a dry run wrote outputs"


def test_snakemake_rejects_bad_config_before_any_job(dry_checkout, tmp_path):
    config = load("smoke.yaml")
    config["adapter"]["rnak"] = 4
    del config["seed"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    result = snakemake(["--cores", "1", "--configfile", str(bad)], dry_checkout)
    assert result.returncode != 0
    assert "adapter.rnak: unknown key" in result.stderr and "seed: missing" in result.stderr, explain(result)
    assert not (dry_checkout / "runs").exists() and not (dry_checkout / "logs").exists()


# --- the smoke DAG, really run ------------------------------------------------------------------------------

def check_smoke_outputs(root: Path, jobs: dict[str, int]) -> dict:
    run = root / "runs" / "smoke"
    base = run / "base_model"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert (base / name).is_file(), f"{base / name} missing"
    assert json.loads((base / "config.json").read_text())["hidden_size"] == \
        load("smoke.yaml")["base_model"]["random_config"]["hidden_size"]
    report = json.loads((run / "report" / "summary.json").read_text())
    assert (run / "report" / "summary.md").read_text().startswith("# Run `smoke`")
    assert report["run_name"] == "smoke" and report["config"] == load("smoke.yaml")
    described = {Path(o["path"]).name: o for o in report["outputs"]}
    assert described["base_model"]["parameters"] > 0
    rules = set(jobs) - {"all"}
    assert set(report["stages"]) >= rules - {"report"}
    for rule in rules:
        assert (root / "logs" / "smoke" / f"{rule}.log").is_file(), f"no log for {rule}"
        assert (root / "benchmarks" / "smoke" / f"{rule}.tsv").is_file(), f"no benchmark for {rule}"
    return report


@pytest.fixture(scope="module")
def smoke_local(tmp_path_factory):
    root = checkout(tmp_path_factory.mktemp("smoke-local"))
    result = snakemake(["--profile", LOCAL_PROFILE, "--configfile", "config/smoke.yaml"], root)
    return root, result


@pytest.mark.slow
def test_smoke_dag_runs_locally(smoke_local):
    root, result = smoke_local
    assert result.returncode == 0, explain(result, root)
    check_smoke_outputs(root, EXPECTED_JOBS["smoke.yaml"])


@pytest.mark.slow
@pytest.mark.parametrize("key,value,stale", STALE_AFTER_CHANGE, ids=[c[0] for c in STALE_AFTER_CHANGE])
def test_config_change_reruns_only_stale_stages(smoke_local, tmp_path, key, value, stale):
    root, result = smoke_local
    assert result.returncode == 0, explain(result)
    before = snakemake(["-n", "--cores", "1", "--configfile", "config/smoke.yaml"], root)
    assert before.returncode == 0 and planned_jobs(before) == {}, explain(before)
    config = copy.deepcopy(load("smoke.yaml"))
    set_key(config, key, value)
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config, sort_keys=False))
    after = snakemake(["-n", "--cores", "1", "--configfile", str(changed)], root)
    assert after.returncode == 0, explain(after)
    assert set(planned_jobs(after)) - {"all"} == stale, explain(after)


# --- the smoke DAG through --profile slurm on a real local cluster ------------------------------------------

@pytest.fixture(scope="module")
def slurm_cluster():
    from ga.testing.slurm_cluster import LocalSlurmCluster

    if os.geteuid() != 0:
        pytest.skip("the local SLURM cluster runs its daemons as root")
    with LocalSlurmCluster() as cluster:
        yield cluster


@pytest.mark.slow
def test_smoke_dag_runs_through_slurm_profile(slurm_cluster, tmp_path):
    root = checkout(tmp_path / "checkout")
    # Test override on top of ./slurm: the local cluster's partition, resources that fit its single node,
    # squeue for job states (no accounting here), quick status checks, and kept job logs to inspect.
    override = tmp_path / "slurm-local"
    override.mkdir()
    (override / "config.yaml").write_text(yaml.safe_dump({
        "default-resources": {"slurm_partition": slurm_cluster.partition, "mem_mb": 2000, "runtime": 30,
                              "cpus_per_task": 1},
        "set-resources": {"fetch_base": {"mem_mb": 4000, "cpus_per_task": 1}},
        "slurm-status-command": "squeue",
        "slurm-init-seconds-before-status-checks": 2,
        "slurm-keep-successful-logs": True,
    }))
    result = snakemake(["--profile", "slurm", "--profile", str(override), "--configfile", "config/smoke.yaml"],
                       root, env=workflow_env(slurm_cluster.env()))
    assert result.returncode == 0, explain(result, root) + "\n" + slurm_cluster.logs()
    jobs = EXPECTED_JOBS["smoke.yaml"]
    check_smoke_outputs(root, jobs)
    # Every non-local rule really ran as a SLURM job on the local partition, and completed.
    squeue = subprocess.run(["squeue", "--states=all", "--noheader", "--format=%j|%P|%T|%k"],
                            env=slurm_cluster.env(), capture_output=True, text=True, check=True).stdout
    completed = [line.split("|") for line in squeue.splitlines() if line]
    remote_rules = set(jobs) - {"all", "report"}
    assert remote_rules, "the smoke DAG has no SLURM job"
    for rule in remote_rules:
        assert any(state == "COMPLETED" and partition == slurm_cluster.partition and comment == f"rule_{rule}"
                   for _, partition, state, comment in completed), f"{rule} not completed on SLURM:\n{squeue}"
        assert list((root / ".snakemake" / "slurm_logs").glob(f"rule_{rule}/**/*.log")), f"no SLURM log of {rule}"


def test_environment_yml_matches_pyproject():
    """environment.yml lists exactly pyproject's dependencies (+ dev extras), with the same lower bounds."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = {Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    conda_names = {"pytorch": "torch"}  # conda package -> PyPI name
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    listed = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            listed |= {Requirement(r) for r in dep["pip"] if not r.startswith("-e")}
        else:
            name, spec = re.match(r"([A-Za-z0-9_.-]+)(.*)", dep).groups()
            if name in {"python", "pip", "graphviz"}:
                continue
            listed.add(Requirement(conda_names.get(name, name) + spec))
    assert {str(r) for r in listed} == {str(r) for r in wanted}
