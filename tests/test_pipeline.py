"""The pipeline: the DAG of every config, config errors before any job, the smoke DAG end to end (locally and
through `--profile slurm` on a real one-node SLURM cluster), rule params == the stages' depends_on(), and rerunning
only stale stages after a one-value override.

Snakemake runs in a temporary copy of the workflow files (tests/workflow_support.py), so the runs/ of the tests
never land in the repository. When a rules file adds a stage, extend EXPECTED_JOBS and STALE_AFTER_CHANGE below.
"""

from __future__ import annotations

import ast
import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from workflow_support import REPO, checkout, explain, snakemake, workflow_env

from ga import stages
from ga.run_config import RunConfig

CONFIGS = sorted(p.name for p in (REPO / "config").glob("*.yaml") if p.name != "schema.yaml")

# Jobs `snakemake -n` plans for a fresh run of each config (rule -> count); `all` is the target rule. sft_sources
# has one job per dataset of the config's instruction-tuning mixture.


def expected_jobs(name: str) -> dict[str, int]:
    config = RunConfig.load(REPO / "config" / name)
    kqa = config.knowledge_eval
    benchmarks, lengths, methods = len(kqa.benchmarks), len(kqa.lengths), len(kqa.methods)
    jobs = {
        "fetch_base": 1,
        "pretrain_documents": 1,
        "pretrain_data": 1,
        "pretrain": 1,
        "sft_sources": len(config.sft_data.datasets),
        "sft_data": 1,
        "finetune": 1,
        "knowledge_contexts": benchmarks * lengths,
        "knowledge_eval": benchmarks * methods * lengths,
        "knowledge_summary": 1,
        "report": 1,
        "all": 1,
    }
    if "qa_finetuning" in kqa.methods:
        jobs["knowledge_qa_lora"] = benchmarks
    from ga.eval.icl.sources import benchmark_tasks, icl_jobs

    tasks = sum(len(names) for names in benchmark_tasks(config).values())
    jobs.update(icl_episodes=tasks * len(config.icl_eval.seeds), icl_eval=len(icl_jobs(config)), icl_summary=1)
    from ga.eval.msc.jobs import batch_ids

    msc = config.msc_eval
    jobs.update(
        msc_conversations=len(msc.benchmarks),
        msc_summary=1,
        msc_eval=sum(len(batch_ids(config, benchmark)) for benchmark in msc.benchmarks) * len(msc.methods),
    )
    return jobs


# knowledge_contexts has one job per benchmark x length, knowledge_eval one per benchmark x method x length.
EXPECTED_JOBS = {name: expected_jobs(name) for name in CONFIGS}
STREAMINGQA_FIXTURE = REPO / "tests" / "fixtures" / "streamingqa" / "camels_test.csv"
"""Stands in for the StreamingQA files the paper configs expect under data/streamingqa/ (a user supplies them)."""
PAPER_SFT_DATASETS = 9

# After a complete smoke run, overriding config values (`--config set="key=value ..."`) must make exactly these
# rules stale (besides the `all` target, which always runs); a dict also gives the number of jobs of each rule.
EVAL_STAGES = {
    "knowledge_contexts",
    "knowledge_qa_lora",
    "knowledge_eval",
    "knowledge_summary",
    "icl_episodes",
    "icl_eval",
    "icl_summary",
    "msc_conversations",
    "msc_eval",
    "msc_summary",
}
ALL_STAGES = {
    "fetch_base",
    "pretrain_documents",
    "pretrain_data",
    "pretrain",
    "sft_sources",
    "sft_data",
    "finetune",
    "report",
} | EVAL_STAGES
SMOKE_EVAL_JOBS = {"knowledge_eval": 6, "knowledge_summary": 1, "report": 1}
SMOKE_ICL_JOBS = {"icl_eval": 7, "icl_summary": 1}
"""Evaluation jobs downstream of a new generator or of a new contexts file (the smoke grid: 6 methods x 1 length);
knowledge_eval's generative_adapter job is the only one that reads the generator."""
AFTER_NEW_GENERATOR = {
    "knowledge_eval": 1,
    "knowledge_summary": 1,
    "icl_eval": 2,
    "icl_summary": 1,
    "msc_eval": 2,
    "msc_summary": 1,
    "report": 1,
}
"""...and the generative adapter's in-context-learning jobs (smoke grid: 1 k x 2 seeds) and personalization jobs
(2 conversation batches)."""
STALE_AFTER_CHANGE = [
    # a new base model dir may carry a new tokenizer, so the data stages downstream of it rerun
    ("base_model.random_config.hidden_size=32", ALL_STAGES - {"icl_episodes"}),  # ICL examples are text
    ("seed=1", ALL_STAGES),
    (
        "adapter.alpha=4",
        {"pretrain": 1, "finetune": 1, **AFTER_NEW_GENERATOR},
    ),  # the generator's scale: training, never data
    # a training hyperparameter never reruns data preparation; fine-tuning starts from the new pretrained generator
    ("pretrain.lr=1.0e-4", {"pretrain": 1, "finetune": 1, **AFTER_NEW_GENERATOR}),
    # what validation measures is an output of pretrain (its rerun rewrites the generator that finetune starts from)
    ("pretrain.val_examples=2", {"pretrain": 1, "finetune": 1, **AFTER_NEW_GENERATOR}),
    ("pretrain.checkpoint_every=1", {"report"}),  # changes no output; the report shows the whole config
    ("pretrain.resources.threads=2", {"report"}),
    (
        "pretrain_data.reconstruction_windows=2",
        {"pretrain_data": 1, "pretrain": 1, "finetune": 1, **AFTER_NEW_GENERATOR},
    ),  # layout: examples on
    # the window length is also the instruction-tuning windows' length
    (
        "pretrain_data.window=16 adapter.window=16",
        {"pretrain_data": 1, "pretrain": 1, "sft_data": 1, "finetune": 1, **AFTER_NEW_GENERATOR},
    ),
    (
        "pretrain_data.token_budget=5000",
        {"pretrain_documents": 1, "pretrain_data": 1, "pretrain": 1, "finetune": 1, **AFTER_NEW_GENERATOR},
    ),
    ("pretrain_data.tokenize_batch_documents=8", {"report"}),  # never changes a byte of the data
    # the generated QA datasets split the fictional entities exactly as the pretraining data holds them out
    # ... and the evaluation's held-out entities with them (new contexts, new QA pairs for the QA LoRA)
    (
        "pretrain_data.val_fraction=0.3",
        {
            "pretrain_data": 1,
            "pretrain": 1,
            "sft_sources": 2,
            "sft_data": 1,
            "finetune": 1,
            "knowledge_contexts": 1,
            "knowledge_qa_lora": 1,
            **SMOKE_EVAL_JOBS,
            "icl_episodes": 2,
            **SMOKE_ICL_JOBS,
            "msc_eval": 2,
            "msc_summary": 1,
        },
    ),
    # one dataset's filter: that dataset's job and the mixture
    # the SFT data: that dataset's job, the mixture and the fine-tuning on it
    # ... and the personalization twin's conversations, generated by the same settings
    (
        "sft_sources.synthetic_chat.questions_per_record=2",
        {"sft_sources": 1, "sft_data": 1, "finetune": 1, **AFTER_NEW_GENERATOR, "msc_conversations": 1, "msc_eval": 6},
    ),
    (
        "sft_sources.max_conversation_tokens=100",
        {"sft_sources": 3, "sft_data": 1, "finetune": 1, **AFTER_NEW_GENERATOR},
    ),
    ("sft_data.val_records=1", {"sft_data": 1, "finetune": 1, **AFTER_NEW_GENERATOR}),
    ("sft_data.tokenize_batch_records=8", {"report"}),
    ("finetune.lr=1.0e-3", {"finetune": 1, **AFTER_NEW_GENERATOR}),  # fine-tuning alone: the pretrained one stays
    ("finetune.max_new_tokens=2", {"finetune": 1, **AFTER_NEW_GENERATOR}),  # the F1 check is an output of finetune
    ("finetune.checkpoint_every=2", {"report"}),
    ("finetune.resources.threads=2", {"report"}),
    # evaluation settings never make training stale; each reruns only the jobs of the method that uses it
    ("knowledge_eval.bm25.k1=1.2", {"knowledge_eval": 1, "knowledge_summary": 1, "report": 1}),
    ("knowledge_eval.encode_strategy=streaming", {"knowledge_eval": 1, "knowledge_summary": 1, "report": 1}),
    (
        "knowledge_eval.qa_finetuning.lr=1.0e-4",
        {"knowledge_qa_lora": 1, "knowledge_eval": 1, "knowledge_summary": 1, "report": 1},
    ),
    ("knowledge_eval.max_new_tokens=3", SMOKE_EVAL_JOBS),  # every method generates
    ("knowledge_eval.resources.in_context.threads=2", {"report"}),
    # a new length: its contexts and its jobs only
    ("knowledge_eval.lengths=[128,256]", {"knowledge_contexts": 1, **SMOKE_EVAL_JOBS}),
    ("icl_eval.ks=[4,8]", {"icl_eval": 6, "icl_summary": 1, "report": 1}),  # a new k: its jobs (3 methods x 2 seeds)
    ("icl_eval.few_shot_finetuning.lr=1.0e-4", {"icl_eval": 2, "icl_summary": 1, "report": 1}),
    ("icl_eval.max_test_examples=3", {**SMOKE_ICL_JOBS, "report": 1}),
    ("msc_eval.encode_strategy=session_streaming", {"msc_eval": 2, "msc_summary": 1, "report": 1}),
    ("msc_eval.max_prompt_tokens=500", {"msc_eval": 2, "msc_summary": 1, "report": 1}),  # in-context prompting
    # a new method: its jobs only
    (
        "knowledge_eval.methods=[generative_adapter,closed_book,in_context,bm25,continual_pretraining]",
        {"knowledge_summary": 1, "report": 1},
    ),
    (
        "msc_eval.methods=[generative_adapter,closed_book,in_context,other_user_adapter]",  # the control's 2 batches
        {"msc_eval": 2, "msc_summary": 1, "report": 1},
    ),
]


def load(name: str) -> dict:
    return yaml.safe_load((REPO / "config" / name).read_text())


# --- Snakemake itself ---------------------------------------------------------------------------------------


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


@pytest.fixture(scope="module")
def dry_checkout(tmp_path_factory) -> Path:
    return checkout(tmp_path_factory.mktemp("dry"))


def supply_streamingqa(root: Path, name: str) -> None:
    """Put a StreamingQA CSV where config `name` expects the user's files (a fixture in CaMeLS's layout)."""
    kqa = RunConfig.load(REPO / "config" / name).knowledge_eval
    for path in (kqa.streamingqa.test_csv, kqa.streamingqa.train_csv):
        if "streamingqa" in kqa.benchmarks and path is not None:
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(STREAMINGQA_FIXTURE, root / path)


def test_paper_config_names_the_missing_streamingqa_file(tmp_path):
    root = checkout(tmp_path / "checkout")
    result = snakemake(["-n", "--cores", "1", "--configfile", "config/paper-mistral.yaml"], root)
    assert result.returncode != 0
    assert "data/streamingqa/streamingqa_test.csv" in result.stdout + result.stderr, explain(result)


@pytest.mark.parametrize("name", CONFIGS)
def test_dry_run_lists_expected_jobs(dry_checkout, name):
    supply_streamingqa(dry_checkout, name)
    args = ["-n", "--cores", "1"] + ([] if name == "config.yaml" else ["--configfile", f"config/{name}"])
    result = snakemake(args, dry_checkout)
    assert result.returncode == 0, explain(result)
    assert planned_jobs(result) == EXPECTED_JOBS[name]
    run_name = load(name)["run_name"]
    outputs = set(re.findall(r"output: (\S+)", result.stdout))
    assert outputs and all(o.startswith(f"runs/{run_name}/") for o in outputs), outputs
    assert not (dry_checkout / "runs").exists(), "a dry run wrote outputs"


def test_dry_run_of_one_stage_for_the_paper_config(dry_checkout):
    result = snakemake(
        ["pretrain_data", "-n", "--cores", "1", "--configfile", "config/paper-mistral.yaml"], dry_checkout
    )
    assert result.returncode == 0, explain(result)
    assert planned_jobs(result) == {"fetch_base": 1, "pretrain_documents": 1, "pretrain_data": 1}
    assert "runs/paper-mistral/data/pretrain/train" in result.stdout
    sft = snakemake(["sft_data", "-n", "--cores", "1", "--configfile", "config/paper-mistral.yaml"], dry_checkout)
    assert sft.returncode == 0, explain(sft)
    assert planned_jobs(sft) == {"fetch_base": 1, "sft_sources": PAPER_SFT_DATASETS, "sft_data": 1}
    for dataset in ("coqa", "metaicl"):
        assert f"runs/paper-mistral/data/sft/sources/{dataset}" in sft.stdout


def test_snakemake_rejects_bad_config_before_any_job(dry_checkout, tmp_path):
    config = load("smoke.yaml")
    config["adapter"]["rnak"] = 4
    bad = tmp_path / "bad.yaml"
    del config["run_name"]
    bad.write_text(yaml.safe_dump(config))
    result = snakemake(["--cores", "1", "--configfile", str(bad)], dry_checkout)
    assert result.returncode != 0
    assert "adapter.rnak: unknown key" in result.stderr and "run_name: missing" in result.stderr, explain(result)
    assert "bad.yaml" in result.stderr
    override = snakemake(["-n", "--cores", "1", "--config", "set=pretrain.stpes=3"], dry_checkout)
    assert override.returncode != 0 and "pretrain.stpes: unknown key" in override.stderr, explain(override)
    assert not (dry_checkout / "runs").exists()


# --- the smoke DAG, really run ------------------------------------------------------------------------------


def check_smoke_outputs(root: Path, jobs: dict[str, int]) -> dict:
    run = root / "runs" / "smoke"
    base = run / "base_model"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert (base / name).is_file(), f"{base / name} missing"
    assert (
        json.loads((base / "config.json").read_text())["hidden_size"]
        == load("smoke.yaml")["base_model"]["random_config"]["hidden_size"]
    )
    report = json.loads((run / "report" / "summary.json").read_text())
    assert (run / "report" / "summary.md").read_text().startswith("# Run `smoke`")
    assert (run / "report" / "index.html").is_file() and (run / "report" / "plots" / "rulegraph.png").is_file()
    resolved = RunConfig.load(REPO / "config" / "smoke.yaml").to_dict()
    assert report["run_name"] == "smoke" and report["config"] == resolved
    assert yaml.safe_load((run / "config.yaml").read_text()) == resolved
    from ga.data.examples import load_examples, read_manifest

    layout = resolved["pretrain_data"]
    windows = layout["completion_windows"] + layout["reconstruction_windows"]
    for split in ("train", "val"):
        manifest = read_manifest(run / "data" / "pretrain" / split)
        assert manifest["examples"] >= 1 and manifest["layout"]["num_windows"] == windows
        assert load_examples(run / "data" / "pretrain" / split)["input_ids"].shape == (
            manifest["examples"],
            windows,
            layout["window"],
        )
    validation = json.loads((run / "pretrain" / "validation.json").read_text())
    assert validation["step"] == resolved["pretrain"]["steps"]
    tuned = json.loads((run / "finetune" / "validation.json").read_text())
    assert tuned["step"] == resolved["finetune"]["steps"]
    assert {
        f"{arm}_{dataset}_ppl" for arm in ("own", "other", "none") for dataset in resolved["sft_data"]["datasets"]
    } <= set(tuned)
    assert (run / "finetune" / "generator" / "generator.safetensors").is_file()
    from ga.data.sft.tokenize import load_examples as load_sft_examples

    datasets = resolved["sft_data"]["datasets"]
    for dataset in datasets:
        assert json.loads((run / "data" / "sft" / "sources" / dataset / "manifest.json").read_text())["records"] > 0
    for split in ("train", "val"):
        manifest = json.loads((run / "data" / "sft" / split / "manifest.json").read_text())
        assert [row["dataset"] for row in manifest["datasets"]] == datasets
        examples = load_sft_examples(run / "data" / "sft" / split)
        assert len(examples) == manifest["examples"] > 0
        assert all(e["input_ids"].shape[1] == resolved["adapter"]["window"] for e in examples)
    described = {Path(o["path"]).name: o for o in report["outputs"]}
    assert described["base_model"]["parameters"] > 0
    rules = set(jobs) - {"all"}
    assert {stage.split(".")[0] for stage in report["stages"]} >= rules - {"report"}  # sft_sources.<dataset>
    for rule in rules:
        assert list((run / "logs").glob(f"{rule}.*log")), f"no log for {rule}"
        assert list((run / "benchmarks").glob(f"{rule}.*tsv")), f"no benchmark for {rule}"
    return report


@pytest.fixture
def smoke_local(smoke_run):
    """The smoke DAG run once per session (tests/conftest.py), shared with the report's browser test."""
    return smoke_run


@pytest.mark.slow
def test_smoke_dag_runs_locally(smoke_local):
    root, result = smoke_local
    assert result.returncode == 0, explain(result, root)
    check_smoke_outputs(root, EXPECTED_JOBS["smoke.yaml"])


OUTPUT_WILDCARDS = {  # where each wildcard rule's output path holds its wildcards
    "sft_sources": r".*/sources/(?P<dataset>[^/]+)",
    "knowledge_contexts": r".*/knowledge/(?P<benchmark>[^/]+)/contexts/(?P<length>\d+)\.parquet",
    "knowledge_qa_lora": r".*/knowledge/(?P<benchmark>[^/]+)/qa_lora",
    "knowledge_eval": r".*/knowledge/(?P<benchmark>[^/]+)/(?P<method>[^/]+)/(?P<length>\d+)",
    "icl_episodes": r".*/icl/(?P<benchmark>[^/]+)/episodes/(?P<task>[^/]+)/(?P<seed>\d+)\.parquet",
    "icl_eval": r".*/icl/(?P<benchmark>[^/]+)/(?P<task>[^/]+)/(?P<method>[^/]+)/k(?P<k>\d+)-s(?P<seed>\d+)",
    "msc_conversations": r".*/msc/(?P<benchmark>[^/]+)/conversations\.parquet",
    "msc_eval": r".*/msc/(?P<benchmark>[^/]+)/(?P<method>[^/]+)/batch-(?P<batch>\d+)",
}


def output_wildcards(rule: str, output: Path) -> dict:
    if not stages.load(rule).STAGE.wildcards:
        return {}
    match = re.fullmatch(OUTPUT_WILDCARDS[rule], str(output))
    assert match, (rule, output)
    return match.groupdict()


@pytest.mark.slow
def test_rule_params_are_the_stages_depends_on(smoke_local):
    """Snakemake records each output's params; they must be exactly the stage's depends_on() for the config."""
    root, result = smoke_local
    assert result.returncode == 0, explain(result, root)
    config = RunConfig.load(REPO / "config" / "smoke.yaml")
    seen = set()
    for path in (root / ".snakemake" / "metadata").iterdir():
        record = json.loads(path.read_text())
        output = Path(base64.urlsafe_b64decode(path.name).decode())  # the metadata file is named by its output
        wildcards = output_wildcards(record["rule"], output)
        # the first param is depends_on (a rule with optional inputs also has their flags, a function of its input)
        assert ast.literal_eval(record["params"][0]) == stages.depends_on(record["rule"], config, **wildcards), record[
            "rule"
        ]
        seen.add(record["rule"])
    assert seen == ALL_STAGES


@pytest.mark.slow
@pytest.mark.parametrize("overrides,stale", STALE_AFTER_CHANGE, ids=[c[0] for c in STALE_AFTER_CHANGE])
def test_one_value_override_reruns_only_stale_stages(smoke_local, overrides, stale):
    root, result = smoke_local
    assert result.returncode == 0, explain(result)
    before = snakemake(["-n", "--cores", "1", "--configfile", "config/smoke.yaml"], root)
    assert before.returncode == 0 and planned_jobs(before) == {}, explain(before)
    after = snakemake(["-n", "--cores", "1", "--configfile", "config/smoke.yaml", "--config", f"set={overrides}"], root)
    assert after.returncode == 0, explain(after)
    planned = {rule: count for rule, count in planned_jobs(after).items() if rule != "all"}
    assert (planned if isinstance(stale, dict) else set(planned)) == stale, explain(after)


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
    (override / "config.yaml").write_text(
        yaml.safe_dump(
            {
                "default-resources": {
                    "slurm_partition": slurm_cluster.partition,
                    "mem_mb": 2000,
                    "runtime": 30,
                    "cpus_per_task": 1,
                },
                "set-resources": {"fetch_base": {"mem_mb": 4000, "cpus_per_task": 1}},
                "slurm-status-command": "squeue",
                "slurm-init-seconds-before-status-checks": 2,
                "slurm-keep-successful-logs": True,
            }
        )
    )
    result = snakemake(
        ["--profile", "slurm", "--profile", str(override), "--configfile", "config/smoke.yaml"],
        root,
        env=workflow_env(slurm_cluster.env()),
    )
    assert result.returncode == 0, explain(result, root) + "\n" + slurm_cluster.logs()
    jobs = EXPECTED_JOBS["smoke.yaml"]
    check_smoke_outputs(root, jobs)
    # Every non-local rule really ran as a SLURM job on the local partition, and completed.
    squeue = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--format=%j|%P|%T|%k"],
        env=slurm_cluster.env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    completed = [line.split("|") for line in squeue.splitlines() if line]
    remote_rules = set(jobs) - {"all", "report", "knowledge_summary", "icl_summary", "msc_summary"}  # local rules
    assert remote_rules, "the smoke DAG has no SLURM job"
    for rule in remote_rules:

        def is_job_of_rule(
            comment: str, rule: str = rule
        ) -> bool:  # rule_<rule>, or rule_<rule>_wildcards_<values> for a wildcard rule
            return comment == f"rule_{rule}" or comment.startswith(f"rule_{rule}_wildcards_")

        jobs_done = sum(
            state == "COMPLETED" and partition == slurm_cluster.partition and is_job_of_rule(comment)
            for _, partition, state, comment in completed
        )
        assert jobs_done == jobs[rule], f"{rule}: {jobs_done} of {jobs[rule]} jobs completed on SLURM:\n{squeue}"
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
