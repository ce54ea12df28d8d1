"""Where a pipeline run's files live: runs/{run_name}/ and everything under it (the one place that says so).

The rules (rules/*.smk) name their outputs, logs and benchmark files from it, the report reads the run from it, and
the user commands find a generator's run from it. Imports nothing beyond the standard library, so the rules, the
report and `ga --help` pay nothing for it.

    runs/{run_name}/
        config.yaml                              the resolved config the stages read
        base_model/                              fetch_base
        data/pretrain/{documents,train,val}/     pretrain_documents, pretrain_data
        data/sft/sources/<dataset>/, {train,val}/  sft_sources, sft_data
        pretrain/, finetune/                     generator/, metrics.jsonl, validation.json (+ state/, checkpoints)
        eval/{knowledge,icl,msc}/                the evaluation families
        report/                                  summary.json, summary.md, index.html, plots/
        logs/<rule>[.<wildcards>].log            each job's log
        benchmarks/<rule>[.<wildcards>].tsv      Snakemake's timing and memory of each job
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RUNS_DIR = "runs"
"""Every run's folder sits here, relative to the workflow folder."""
TRAINING_STAGES = ("pretrain", "finetune")
"""The stages that train the generator; each writes the same files into its own folder."""


@dataclass(frozen=True)
class RunLayout:
    """The files of the run in folder `root` (normally runs/{run_name}: `RunLayout.of(run_name)`)."""

    root: Path

    @classmethod
    def of(cls, run_name: str) -> RunLayout:
        """The layout of run `run_name` in the workflow folder."""
        return cls(Path(RUNS_DIR) / run_name)

    @classmethod
    def of_generator(cls, generator_dir: str | Path) -> RunLayout:
        """The run whose `pretrain/generator` or `finetune/generator` folder `generator_dir` would be (absolute)."""
        return cls(Path(generator_dir).absolute().parent.parent)

    # ------------------------------------------------------------------ the run's bookkeeping
    @property
    def config(self) -> Path:
        """The resolved config (files + overrides + defaults) the stages read."""
        return self.root / "config.yaml"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def benchmarks(self) -> Path:
        return self.root / "benchmarks"

    def log(self, rule: str, *wildcards: str) -> Path:
        """logs/<rule>[.<wildcard>...].log: one job's log (`wildcards` are patterns such as "{dataset}")."""
        return self.logs / f"{job_name(rule, wildcards)}.log"

    def benchmark(self, rule: str, *wildcards: str) -> Path:
        """benchmarks/<rule>[.<wildcard>...].tsv: Snakemake's timing and memory of one job."""
        return self.benchmarks / f"{job_name(rule, wildcards)}.tsv"

    # ------------------------------------------------------------------ base model and data
    @property
    def base_model(self) -> Path:
        return self.root / "base_model"

    @property
    def pretrain_data(self) -> Path:
        return self.root / "data" / "pretrain"

    @property
    def pretrain_documents(self) -> Path:
        return self.pretrain_data / "documents"

    def pretrain_split(self, split: str) -> Path:
        """The `train` or `val` examples folder of pretraining."""
        return self.pretrain_data / split

    @property
    def sft_data(self) -> Path:
        return self.root / "data" / "sft"

    @property
    def sft_sources(self) -> Path:
        return self.sft_data / "sources"

    def sft_source(self, dataset: str) -> Path:
        """One instruction-tuning dataset's converted records (`dataset` may be the pattern "{dataset}")."""
        return self.sft_sources / dataset

    def sft_split(self, split: str) -> Path:
        """The `train` or `val` examples folder of instruction tuning."""
        return self.sft_data / split

    # ------------------------------------------------------------------ training (TRAINING_STAGES)
    def training(self, stage: str) -> Path:
        """The folder of training stage `stage` (pretrain or finetune)."""
        if stage not in TRAINING_STAGES:
            raise ValueError(f"no training stage {stage!r}; one of {', '.join(TRAINING_STAGES)}")
        return self.root / stage

    def generator(self, stage: str) -> Path:
        return self.training(stage) / "generator"

    def metrics(self, stage: str) -> Path:
        """One JSON row per optimizer step and per validation."""
        return self.training(stage) / "metrics.jsonl"

    def validation(self, stage: str) -> Path:
        """The final validation of the trained generator."""
        return self.training(stage) / "validation.json"

    # ------------------------------------------------------------------ evaluation families
    @property
    def knowledge_eval(self) -> Path:
        return self.root / "eval" / "knowledge"

    @property
    def icl_eval(self) -> Path:
        return self.root / "eval" / "icl"

    @property
    def msc_eval(self) -> Path:
        return self.root / "eval" / "msc"

    @property
    def knowledge_summary(self) -> Path:
        return self.knowledge_eval / "summary.parquet"

    @property
    def icl_summary(self) -> Path:
        """A folder (one table per kind of row)."""
        return self.icl_eval / "summary"

    @property
    def msc_summary(self) -> Path:
        return self.msc_eval / "summary.parquet"

    # ------------------------------------------------------------------ report
    @property
    def report(self) -> Path:
        return self.root / "report"

    @property
    def report_json(self) -> Path:
        return self.report / "summary.json"

    @property
    def report_markdown(self) -> Path:
        return self.report / "summary.md"

    @property
    def report_html(self) -> Path:
        return self.report / "index.html"

    @property
    def report_plots(self) -> Path:
        return self.report / "plots"


def job_name(rule: str, wildcards: tuple[str, ...] = ()) -> str:
    """<rule>[.<wildcard>...]: the stem of a job's log and benchmark file."""
    return ".".join((rule, *wildcards))


def rule_of_job(name: str) -> str:
    """<rule>[.<wildcard values>] (a log or benchmark file's stem) -> <rule>."""
    return name.split(".", 1)[0]
