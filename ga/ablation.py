"""The paper's pretraining ablations (Table 2; docs/method.md#pretraining-ablations): each config variant run through
the pipeline, their validation numbers in one table.

A variants file (config/ablations/*.yaml) maps a variant name to a list of `key.path=value` overrides of a base run
config. For each variant, `run_ablation` runs

    snakemake --configfile BASE --config set="run_name=ablation-<variant> <overrides>" \\
        runs/ablation-<variant>/pretrain/validation.json

so every variant has its own run directory: a finished variant is not trained again when the ablation is rerun, and
each keeps its generator, metrics and logs. (Outputs live under runs/<run_name>/, so each variant also prepares its
own copy of the data; for the embedded default that takes seconds.) It then writes ablation.md and ablation.json.
The command line is scripts/ablate.py.
"""
from __future__ import annotations

import csv
import json
import math
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ga.io import read_yaml, write_json, write_text
from ga.run_config import RUN_NAME_PATTERN, RunConfig
from ga.section import ConfigError

RUN_NAME_PREFIX = "ablation-"
TABLE_MARKDOWN = "ablation.md"
TABLE_JSON = "ablation.json"
LOGS_DIR = "logs"
LOG_TAIL_CHARS = 4000
"""How much of a failed variant's Snakemake output the error shows."""
SECONDS_PER_MINUTE = 60.0
PRETRAIN_RULE = "pretrain"

COLUMNS = (
    ("own_reconstruction_ppl", "own rec."),
    ("other_reconstruction_ppl", "other rec."),
    ("none_reconstruction_ppl", "none rec."),
    ("own_completion_ppl", "own compl."),
    ("other_completion_ppl", "other compl."),
    ("none_completion_ppl", "none compl."),
    ("own_first_window_ppl", "window 0"),
    ("paper_reconstruction_ppl", "paper rec."),
    ("paper_completion_ppl", "paper compl."),
    ("paper_documents", "paper docs"),
)
"""(key of validation.json, column header) of the table, after the variant's name and before its minutes."""


@dataclass(frozen=True)
class Variant:
    """One ablation: a name and the overrides that make it from the base config."""

    name: str
    overrides: tuple[str, ...]

    @property
    def run_name(self) -> str:
        return RUN_NAME_PREFIX + self.name


def load_variants(path: str | os.PathLike) -> list[Variant]:
    """The variants of a variants file (name -> list of `key.path=value`), in file order."""
    try:
        values = read_yaml(Path(path))
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(str(err)) from None
    if not isinstance(values, dict) or not values:
        raise ConfigError(f"{path}: expected a mapping of variant name -> list of key.path=value overrides")
    variants = []
    for name, overrides in values.items():
        if not isinstance(name, str) or not re.fullmatch(RUN_NAME_PATTERN, RUN_NAME_PREFIX + name):
            raise ConfigError(f"{path}: variant name {name!r} must be letters, digits, '.', '_' or '-'")
        overrides = [] if overrides is None else overrides
        if not isinstance(overrides, list) or not all(isinstance(o, str) and "=" in o for o in overrides):
            raise ConfigError(f"{path}: {name}: expected a list of key.path=value overrides, got {overrides!r}")
        variants.append(Variant(name, tuple(overrides)))
    return variants


def select(variants: Sequence[Variant], names: Sequence[str] | None) -> list[Variant]:
    """The variants named in `names` (all when None), in file order; unknown names are an error."""
    if names is None:
        return list(variants)
    known = {variant.name for variant in variants}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ConfigError(f"unknown variant(s) {unknown}; the variants file has {sorted(known)}")
    return [variant for variant in variants if variant.name in names]


def run_overrides(variant: Variant, common: Sequence[str] = ()) -> list[str]:
    """The overrides of one variant's run: its run name, its own overrides, then those common to every variant."""
    return [f"run_name={variant.run_name}", *variant.overrides, *common]


def validation_target(config: RunConfig) -> str:
    """The pretrain rule's validation output of a run (rules/train.smk), relative to the workflow directory."""
    return f"{config.run_dir}/{PRETRAIN_RULE}/validation.json"


def snakemake_command(config_path: str | os.PathLike, overrides: Sequence[str], target: str, cores: str,
                      snakemake_args: Sequence[str] = ()) -> list[str]:
    """The Snakemake call that builds `target` for the base config plus `overrides` (`--config set=...`)."""
    return [sys.executable, "-m", "snakemake", "--configfile", str(config_path), "--config",
            f"set={shlex.join(overrides)}", "--cores", str(cores), "--rerun-incomplete", *snakemake_args, target]


def pretrain_minutes(workdir: Path, config: RunConfig) -> float | None:
    """Wall-clock minutes of the run's pretrain job, from its Snakemake benchmark file (None if absent)."""
    path = workdir / config.benchmarks_dir / f"{PRETRAIN_RULE}.tsv"
    if not path.is_file():
        return None
    with path.open() as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return float(rows[-1]["s"]) / SECONDS_PER_MINUTE if rows else None


def run_variant(variant: Variant, config_path: Path, common: Sequence[str], workdir: Path, log_dir: Path,
                cores: str, snakemake_args: Sequence[str], env: Mapping[str, str] | None) -> dict:
    """Run one variant's pipeline up to its validation; returns its table row (with the whole validation)."""
    overrides = run_overrides(variant, common)
    config = RunConfig.load(config_path, overrides)
    target = validation_target(config)
    command = snakemake_command(config_path, overrides, target, cores, snakemake_args)
    log_path = log_dir / f"{variant.name}.log"
    print(f"[ablation] {variant.name}: {shlex.join(command)}", flush=True)
    start = time.perf_counter()
    with log_path.open("w") as log:
        result = subprocess.run(command, cwd=workdir, env=None if env is None else dict(env), stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False)
    wall = (time.perf_counter() - start) / SECONDS_PER_MINUTE
    if result.returncode != 0:
        tail = log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
        raise RuntimeError(f"variant {variant.name}: snakemake exited with {result.returncode} (full output in "
                           f"{log_path}; rule logs in {workdir / config.logs_dir}):\n{tail}")
    validation = json.loads((workdir / target).read_text())
    return {"variant": variant.name, "run_name": variant.run_name, "overrides": list(variant.overrides),
            **{key: validation.get(key) for key, _ in COLUMNS},
            "pretrain_minutes": pretrain_minutes(workdir, config), "wall_minutes": wall, "validation": validation}


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.2f}" if math.isfinite(value) else str(value)
    return str(value)


def ablation_markdown(rows: Sequence[Mapping], config_path: str, common: Sequence[str]) -> str:
    """The table of `rows` (one per variant) as Markdown, with what its columns mean."""
    headers = ["variant", *(header for _, header in COLUMNS), "pretrain min"]
    legend = ("Validation perplexity per variant (docs/method.md#pretraining-ablations). Columns own / other / none: "
              "this project's own protocol (held-out packed sequences; adapter from the same sequence, another one, "
              "or none); window 0: the first window, which has no adapter; paper: the paper's Table 2 protocol "
              "(per held-out document, first window as context). \"–\": not reported (e.g. no reconstruction "
              "windows).")
    lines = [f"# Pretraining ablations of `{config_path}`", "", legend, ""]
    if common:
        lines += [f"Overrides of every variant: `{shlex.join(common)}`.", ""]
    lines += ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        cells = [row["variant"], *(_cell(row.get(key)) for key, _ in COLUMNS), _cell(row.get("pretrain_minutes"))]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| variant | overrides |", "|---|---|"]
    lines += [f"| {row['variant']} | {' '.join(f'`{o}`' for o in row['overrides']) or '(the base config)'} |"
              for row in rows]
    return "\n".join(lines) + "\n"


def run_ablation(config_path: str | os.PathLike, variants_path: str | os.PathLike, out_dir: str | os.PathLike,
                 steps: int | None = None, only: Sequence[str] | None = None, overrides: Sequence[str] = (),
                 workdir: str | os.PathLike = ".", cores: str = "all", snakemake_args: Sequence[str] = (),
                 env: Mapping[str, str] | None = None) -> list[dict]:
    """Run the variants of `variants_path` (those named in `only`; all when None) on the base config `config_path`,
    one after another, and write out_dir/ablation.md and out_dir/ablation.json; returns the rows.

    steps: pretrain.steps of every variant (a quick run); overrides: further `key.path=value` for every variant.
    workdir: the workflow directory (Snakefile, rules/, config/); relative paths are taken from the current one.
    Every variant's config is checked before the first job runs.
    """
    config_path, workdir = Path(config_path).resolve(), Path(workdir).resolve()
    out_dir = Path(out_dir).resolve()
    variants = select(load_variants(variants_path), only)
    common = [*overrides, *([f"pretrain.steps={steps}"] if steps is not None else [])]
    for variant in variants:
        try:
            RunConfig.load(config_path, run_overrides(variant, common))
        except ConfigError as err:
            raise ConfigError(f"variant {variant.name}: {err}") from None
    log_dir = out_dir / LOGS_DIR
    log_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for variant in variants:
        rows.append(run_variant(variant, config_path, common, workdir, log_dir, cores, snakemake_args, env))
    write_json(rows, out_dir / TABLE_JSON, sort_keys=False)
    write_text(ablation_markdown(rows, str(config_path.relative_to(workdir) if config_path.is_relative_to(workdir)
                                           else config_path), common), out_dir / TABLE_MARKDOWN)
    return rows
