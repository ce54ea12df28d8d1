"""The run folder layout (ga/layout.py) is the one the rules, the report and the user commands use: the smoke DAG's
jobs write exactly where RunLayout says, every log and benchmark file lies under the run folder, and a generator's
run (what `ga adapt` looks for) is the run that wrote it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from workflow_support import REPO, checkout, explain, snakemake, workflow_env

from ga.layout import TRAINING_STAGES, RunLayout, rule_of_job
from ga.run_config import RunConfig

JOB_FIELD = re.compile(r"^\s+(output|log|benchmark|wildcards): (.*)$")


def planned_files(stdout: str) -> list[dict]:
    """One dict per job of a dry run's listing: rule, and its output / log / benchmark / wildcards lines."""
    jobs = []
    for line in stdout.splitlines():
        if line.startswith(("rule ", "localrule ")) and line.endswith(":"):
            jobs.append({"rule": line.split()[1].rstrip(":")})
        elif jobs and (match := JOB_FIELD.match(line)):
            jobs[-1][match.group(1)] = match.group(2)
    return jobs


@pytest.fixture(scope="module")
def smoke_jobs(tmp_path_factory) -> list[dict]:
    root = checkout(tmp_path_factory.mktemp("layout"))
    result = snakemake(["-n", "--cores", "1", "--configfile", "config/smoke.yaml"], root)
    assert result.returncode == 0, explain(result)
    return planned_files(result.stdout)


def outputs_of(jobs: list[dict], rule: str) -> list[Path]:
    return [Path(path) for job in jobs if job["rule"] == rule for path in job["output"].split(", ")]


def test_run_config_layout_is_the_run_folder():
    config = RunConfig.load(REPO / "config" / "smoke.yaml")
    assert config.layout == RunLayout.of("smoke") == RunLayout(Path("runs/smoke"))
    assert config.layout.config == Path("runs/smoke/config.yaml")


def test_every_log_and_benchmark_lies_in_the_run_folder(smoke_jobs):
    layout = RunLayout.of("smoke")
    jobs = [job for job in smoke_jobs if job["rule"] != "all"]
    assert jobs
    for job in jobs:
        log, benchmark = Path(job["log"]), Path(job["benchmark"])
        assert log.parent == layout.logs and benchmark.parent == layout.benchmarks, job
        assert log.suffix == ".log" and benchmark.suffix == ".tsv" and log.stem == benchmark.stem, job
        assert rule_of_job(log.stem) == job["rule"], job
        if "wildcards" not in job:
            assert (log, benchmark) == (layout.log(job["rule"]), layout.benchmark(job["rule"])), job
        for output in job["output"].split(", "):
            assert Path(output).is_relative_to(layout.root), job


def test_the_rules_write_where_the_layout_says(smoke_jobs):
    layout = RunLayout.of("smoke")
    assert outputs_of(smoke_jobs, "fetch_base") == [layout.base_model]
    assert outputs_of(smoke_jobs, "pretrain_documents") == [layout.pretrain_documents]
    assert outputs_of(smoke_jobs, "pretrain_data") == [layout.pretrain_split("train"), layout.pretrain_split("val")]
    datasets = RunConfig.load(REPO / "config" / "smoke.yaml").sft_data.datasets
    assert sorted(outputs_of(smoke_jobs, "sft_sources")) == sorted(layout.sft_source(name) for name in datasets)
    assert outputs_of(smoke_jobs, "sft_data") == [layout.sft_split("train"), layout.sft_split("val")]
    for stage in TRAINING_STAGES:
        assert outputs_of(smoke_jobs, stage) == [
            layout.generator(stage),
            layout.metrics(stage),
            layout.validation(stage),
        ]
    assert outputs_of(smoke_jobs, "report") == [
        layout.report_json,
        layout.report_markdown,
        layout.report_html,
        layout.report_plots,
    ]
    # what the report reads (ga/report/build.py) is what the evaluation summaries write
    assert layout.knowledge_summary in outputs_of(smoke_jobs, "knowledge_summary")
    assert outputs_of(smoke_jobs, "icl_summary") == [layout.icl_summary]
    assert layout.msc_summary in outputs_of(smoke_jobs, "msc_summary")
    for rule, folder in (
        ("knowledge_eval", layout.knowledge_eval),
        ("icl_eval", layout.icl_eval),
        ("msc_eval", layout.msc_eval),
    ):
        outputs = outputs_of(smoke_jobs, rule)
        assert outputs and all(path.is_relative_to(folder) for path in outputs), rule


@pytest.mark.parametrize("stage", TRAINING_STAGES)
def test_a_generator_finds_the_run_that_wrote_it(stage):
    layout = RunLayout.of("smoke")
    assert RunLayout.of_generator(layout.generator(stage)).base_model == layout.base_model.absolute()


def test_an_unknown_training_stage_is_named():
    with pytest.raises(ValueError, match="no training stage 'report'"):
        RunLayout.of("smoke").generator("report")


def test_the_layout_imports_only_the_standard_library():
    code = (
        "import sys; before = set(sys.modules); import ga.layout; "
        "print(sorted(m for m in set(sys.modules) - before if m.startswith('ga')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=workflow_env(), capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "['ga', 'ga.layout']"
