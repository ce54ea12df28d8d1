"""Reading one run's folder (runs/{run_name}/, laid out as ga/layout.py says) into rows for the report.

Every reader returns None (or an empty list) when the stage's output is not there, so a report of a partial run
shows what exists and says what is missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ga.data.examples import MANIFEST
from ga.layout import RunLayout, rule_of_job


def manifest_of(data_dir: Path) -> Path:
    """The manifest of a data folder (documents, a split, an instruction-tuning source)."""
    return data_dir / MANIFEST


def sft_source_manifests(layout: RunLayout) -> list[Path]:
    return sorted(layout.sft_sources.glob(f"*/{MANIFEST}"))


SPLITS = ("train", "val")


def read_json_if_exists(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def read_parquet_if_exists(path: Path):
    import polars as pl

    return pl.read_parquet(path) if path.is_file() else None


@dataclass
class TrainingLog:
    """One training stage's metrics.jsonl rows by kind, and its final validation.json."""

    train: list[dict]
    val: list[dict]
    validation: dict | None


def read_training_log(layout: RunLayout, stage: str) -> TrainingLog | None:
    metrics, validation = layout.metrics(stage), layout.validation(stage)
    if not metrics.is_file():
        return None
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    return TrainingLog(
        train=[row for row in rows if row.get("kind") == "train"],
        val=[row for row in rows if row.get("kind") == "val"],
        validation=read_json_if_exists(validation),
    )


def stage_costs(benchmarks: dict[str, dict]) -> list[dict]:
    """Per rule: jobs, total and longest wall time (s), peak RSS over its jobs (MB), from read_benchmarks()."""
    by_rule: dict[str, list[dict]] = {}
    for name, bench in benchmarks.items():
        by_rule.setdefault(rule_of_job(name), []).append(bench)
    rows = []
    for rule, jobs in by_rule.items():
        walls = [job["wall_s"] for job in jobs if job["wall_s"] is not None]
        rss = [job["max_rss_mb"] for job in jobs if job["max_rss_mb"] is not None]
        rows.append(
            {
                "rule": rule,
                "jobs": len(jobs),
                "wall_s": sum(walls) if walls else None,
                "longest_s": max(walls) if walls else None,
                "max_rss_mb": max(rss) if rss else None,
            }
        )
    return rows


VERSIONED_PACKAGES = (
    "ga",
    "torch",
    "transformers",
    "peft",
    "deepspeed",
    "safetensors",
    "polars",
    "snakemake",
    "matplotlib",
    "jinja2",
)
"""Packages whose versions the report lists (those that decide what a run computes, and what drew the report)."""


def package_versions(names=VERSIONED_PACKAGES) -> list[tuple[str, str | None]]:
    import platform
    from importlib import metadata

    versions = [("python", platform.python_version())]
    for name in names:
        try:
            versions.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            versions.append((name, None))
    return versions
