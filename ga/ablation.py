"""The paper's pretraining ablations (Table 2; docs/method.md#pretraining-ablations): each config variant run through
the pipeline, their validation numbers in one table.

A variants file (config/ablations/*.yaml) maps a variant name to a list of `key.path=value` overrides of a base run
config. For each variant, `run_ablation` runs

    snakemake --configfile BASE --config set="run_name=ablation-<variant> <overrides>" \\
        runs/ablation-<variant>/pretrain/validation.json

(and, with `through="finetune"`, its finetune/validation.json too), so every variant has its own run directory: a finished variant is not trained again when the ablation is rerun, and
each keeps its generator, metrics and logs. (Outputs live under runs/<run_name>/, so each variant also prepares its
own copy of the data; for the embedded default that takes seconds.) It then writes ablation.md and ablation.json.
The command line is `ga ablate` (`main` below).
"""

from __future__ import annotations

import argparse
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
CURVE_PLOT = "curves.png"
"""Written when a variant validated more than once (`pretrain.eval_every`): quality against training minutes."""
LOGS_DIR = "logs"
LOG_TAIL_CHARS = 4000
"""How much of a failed variant's Snakemake output the error shows."""
SECONDS_PER_MINUTE = 60.0
PRETRAIN_RULE = "pretrain"
FINETUNE_RULE = "finetune"
STAGES = (PRETRAIN_RULE, FINETUNE_RULE)
"""How far each variant runs: pretraining only, or on through instruction tuning."""
PERCENT = 100.0

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
CONTEXT_GAP_KEY = "own_vs_other_reconstruction"
"""1 - own / other reconstruction perplexity, in %: how much the sequence's own adapter beats a disjoint one's."""
SMALL_VALUE = 0.01
"""Table cells below this (e.g. a sign test's p-value) keep two significant digits instead of two decimals."""
FINETUNE_ARMS = ("own", "other", "none")
FINETUNE_DATASET = "entity_qa"
"""The fine-tuning validation dataset whose arms the table shows: the embedded twin's held-out fictional entities."""


def context_gap(validation: Mapping) -> float | None:
    """1 - own / other reconstruction perplexity in % (None when either is not reported)."""
    own, other = validation.get("own_reconstruction_ppl"), validation.get("other_reconstruction_ppl")
    if own is None or other is None:
        return None
    return PERCENT * (1.0 - own / other)


def finetune_cells(validation: Mapping, dataset: str) -> dict[str, float | str | None]:
    """The fine-tuned generator's held-out answer perplexity and greedy answer F1 (%) of `dataset`, per arm, and
    the per-record own-vs-other split with its sign test."""
    answer_f1 = validation.get("answer_f1", {}).get("per_dataset", {}).get(dataset, {})
    cells = {}
    for arm in FINETUNE_ARMS:
        cells[f"finetune_{arm}_ppl"] = validation.get(f"{arm}_{dataset}_ppl")
        f1 = answer_f1.get(f"{arm}_f1")
        cells[f"finetune_{arm}_f1"] = None if f1 is None else PERCENT * f1
    paired = f"own_vs_other_{dataset}"
    lower, examples = validation.get(f"{paired}_lower"), validation.get(f"{paired}_examples")
    cells["finetune_own_lower"] = None if lower is None else f"{lower}/{examples}"
    cells["finetune_own_lower_p"] = validation.get(f"{paired}_sign_p")
    return cells


def validation_curve(metrics_path: Path) -> list[dict]:
    """Each validation of a training run (metrics.jsonl): step, training minutes so far, own / other / none
    reconstruction perplexity and the context gap, so quality can be read against CPU minutes."""
    if not metrics_path.is_file():
        return []
    elapsed_at: dict[int, float] = {}
    points = []
    for line in metrics_path.read_text().splitlines():
        record = json.loads(line)
        if record.get("kind") == "train" and "elapsed_s" in record:
            elapsed_at[record["step"]] = record["elapsed_s"] / SECONDS_PER_MINUTE
        elif record.get("kind") == "val":
            points.append(
                {
                    "step": record["step"],
                    "train_minutes": elapsed_at.get(record["step"]),
                    **{f"{arm}_reconstruction_ppl": record.get(f"{arm}_reconstruction_ppl") for arm in FINETUNE_ARMS},
                    CONTEXT_GAP_KEY: context_gap(record),
                }
            )
    return points


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


def validation_target(config: RunConfig, stage: str = PRETRAIN_RULE) -> str:
    """The validation output of a run's pretrain or finetune rule (rules/train.smk, rules/finetune.smk), relative to
    the workflow directory."""
    return str(config.layout.validation(stage))


def snakemake_command(
    config_path: str | os.PathLike,
    overrides: Sequence[str],
    targets: str | Sequence[str],
    cores: str,
    snakemake_args: Sequence[str] = (),
) -> list[str]:
    """The Snakemake call that builds `targets` for the base config plus `overrides` (`--config set=...`)."""
    targets = [targets] if isinstance(targets, str) else list(targets)
    # Snakemake strips one quote character from either end of a --config value, which would unbalance a quoted
    # last override (e.g. 'pretrain.loss_parts=[reconstruction]'); a trailing space keeps it (YAML then drops it).
    return [
        sys.executable,
        "-m",
        "snakemake",
        "--configfile",
        str(config_path),
        "--config",
        f"set={shlex.join(overrides)} ",
        "--cores",
        str(cores),
        "--rerun-incomplete",
        *snakemake_args,
        *targets,
    ]


def job_minutes(workdir: Path, config: RunConfig, rule: str = PRETRAIN_RULE) -> float | None:
    """Wall-clock minutes of the run's job of `rule`, from its Snakemake benchmark file (None if absent)."""
    path = workdir / config.layout.benchmark(rule)
    if not path.is_file():
        return None
    with path.open() as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return float(rows[-1]["s"]) / SECONDS_PER_MINUTE if rows else None


def run_variant(
    variant: Variant,
    config_path: Path,
    common: Sequence[str],
    workdir: Path,
    log_dir: Path,
    cores: str,
    snakemake_args: Sequence[str],
    env: Mapping[str, str] | None,
    through: str = PRETRAIN_RULE,
    finetune_dataset: str = FINETUNE_DATASET,
) -> dict:
    """Run one variant's pipeline up to its (pretrain or finetune) validation; returns its table row (with the whole
    pretraining validation)."""
    overrides = run_overrides(variant, common)
    config = RunConfig.load(config_path, overrides)
    target = validation_target(config)
    stages = STAGES[: STAGES.index(through) + 1]
    targets = [validation_target(config, stage) for stage in stages]
    command = snakemake_command(config_path, overrides, targets, cores, snakemake_args)
    log_path = log_dir / f"{variant.name}.log"
    print(f"[ablation] {variant.name}: {shlex.join(command)}", flush=True)
    start = time.perf_counter()
    with log_path.open("w") as log:
        result = subprocess.run(
            command,
            cwd=workdir,
            env=None if env is None else dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    wall = (time.perf_counter() - start) / SECONDS_PER_MINUTE
    if result.returncode != 0:
        tail = log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
        raise RuntimeError(
            f"variant {variant.name}: snakemake exited with {result.returncode} (full output in "
            f"{log_path}; rule logs in {workdir / config.layout.logs}):\n{tail}"
        )
    validation = json.loads((workdir / target).read_text())
    row = {
        "variant": variant.name,
        "run_name": variant.run_name,
        "overrides": list(variant.overrides),
        **{key: validation.get(key) for key, _ in COLUMNS},
        CONTEXT_GAP_KEY: context_gap(validation),
        "pretrain_minutes": job_minutes(workdir, config),
        "wall_minutes": wall,
        "validation": validation,
        "curve": validation_curve(workdir / config.layout.metrics(PRETRAIN_RULE)),
    }
    if FINETUNE_RULE in stages:
        finetune = json.loads((workdir / validation_target(config, FINETUNE_RULE)).read_text())
        row.update(
            finetune_cells(finetune, finetune_dataset),
            finetune_dataset=finetune_dataset,
            finetune_minutes=job_minutes(workdir, config, FINETUNE_RULE),
            finetune_validation=finetune,
        )
    return row


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.2g}" if 0 < abs(value) < SMALL_VALUE else f"{value:.2f}"  # p-values: keep 2 digits
    return str(value)


FINETUNE_COLUMNS = (
    *((f"finetune_{arm}_ppl", f"ft. {arm} ppl") for arm in FINETUNE_ARMS),
    *((f"finetune_{arm}_f1", f"ft. {arm} F1") for arm in FINETUNE_ARMS),
    ("finetune_own_lower", "ft. own < other"),
    ("finetune_own_lower_p", "sign test p"),
    ("finetune_minutes", "finetune min"),
)
"""Columns of variants run through fine-tuning: the fine-tuned generator on one held-out dataset, per arm."""


def ablation_markdown(rows: Sequence[Mapping], config_path: str, common: Sequence[str]) -> str:
    """The table of `rows` (one per variant) as Markdown, with what its columns mean, and each variant's
    validations over training (when it validated more than once)."""
    finetuned = [row for row in rows if "finetune_dataset" in row]
    columns = [
        *COLUMNS,
        (CONTEXT_GAP_KEY, "own vs other rec. %"),
        ("pretrain_minutes", "pretrain min"),
        *(FINETUNE_COLUMNS if finetuned else ()),
    ]
    legend = (
        "Validation perplexity per variant (docs/method.md#pretraining-ablations). Columns own / other / none: "
        "this project's own protocol (held-out packed sequences; adapter from the same sequence, another one "
        "sharing no document with it, or none); own vs other rec. %: 1 - own / other reconstruction perplexity; "
        "window 0: the first window, which has no adapter; paper: the paper's Table 2 protocol "
        '(per held-out document, first window as context). "–": not reported (e.g. no reconstruction '
        "windows)."
    )
    if finetuned:
        legend += (
            f" ft.: after instruction tuning, held-out `{finetuned[0]['finetune_dataset']}` records: answer "
            "perplexity and greedy answer F1 (%) with the record's own context adapter, one sharing no source "
            "with it, and none; own < other: records whose answers have a lower mean NLL with their own "
            "adapter than with the other one, and the two-sided sign test's p-value of that split."
        )
    lines = [f"# Ablations of `{config_path}`", "", legend, ""]
    if common:
        lines += [f"Overrides of every variant: `{shlex.join(common)}`.", ""]
    lines += ["| variant | " + " | ".join(header for _, header in columns) + " |", "|" + "---|" * (len(columns) + 1)]
    for row in rows:
        lines.append("| " + " | ".join([row["variant"], *(_cell(row.get(key)) for key, _ in columns)]) + " |")
    lines += ["", "| variant | overrides |", "|---|---|"]
    lines += [
        f"| {row['variant']} | {' '.join(f'`{o}`' for o in row['overrides']) or '(the base config)'} |" for row in rows
    ]
    curves = [row for row in rows if len(row.get("curve", ())) > 1]
    if curves:
        lines += [
            "",
            "## Over training",
            "",
            "Held-out reconstruction perplexity at each validation "
            "(`pretrain.eval_every`), against the training minutes so far.",
            "",
            "| variant | step | train min | own | other | none | own vs other % |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in curves:
            for point in row["curve"]:
                cells = [
                    point["step"],
                    point["train_minutes"],
                    *(point[f"{arm}_reconstruction_ppl"] for arm in FINETUNE_ARMS),
                    point[CONTEXT_GAP_KEY],
                ]
                lines.append("| " + " | ".join([row["variant"], *map(_cell, cells)]) + " |")
    return "\n".join(lines) + "\n"


def run_ablation(
    config_path: str | os.PathLike,
    variants_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    steps: int | None = None,
    only: Sequence[str] | None = None,
    overrides: Sequence[str] = (),
    workdir: str | os.PathLike = ".",
    cores: str = "all",
    snakemake_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    through: str = PRETRAIN_RULE,
    finetune_dataset: str = FINETUNE_DATASET,
) -> list[dict]:
    """Run the variants of `variants_path` (those named in `only`; all when None) on the base config `config_path`,
    one after another, and write out_dir/ablation.md and out_dir/ablation.json; returns the rows.

    steps: pretrain.steps of every variant (a quick run); overrides: further `key.path=value` for every variant.
    through: "pretrain" or "finetune" (also instruction-tune each variant and report `finetune_dataset`).
    workdir: the workflow directory (Snakefile, rules/, config/); relative paths are taken from the current one.
    Every variant's config is checked before the first job runs.
    """
    config_path, workdir = Path(config_path).resolve(), Path(workdir).resolve()
    out_dir = Path(out_dir).resolve()
    if through not in STAGES:
        raise ConfigError(f"through: expected one of {list(STAGES)}, got {through!r}")
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
        rows.append(
            run_variant(
                variant, config_path, common, workdir, log_dir, cores, snakemake_args, env, through, finetune_dataset
            )
        )
    write_json(rows, out_dir / TABLE_JSON, sort_keys=False)
    write_text(
        ablation_markdown(
            rows, str(config_path.relative_to(workdir) if config_path.is_relative_to(workdir) else config_path), common
        ),
        out_dir / TABLE_MARKDOWN,
    )
    write_curve_plot(rows, out_dir / CURVE_PLOT)
    return rows


def write_curve_plot(rows: Sequence[Mapping], path: Path) -> Path | None:
    """`path` (PNG) with the curves of the variants that validated more than once; None (and no file) if none did."""
    curves = {row["variant"]: row["curve"] for row in rows if len(row.get("curve", ())) > 1}
    if not curves:
        return None
    from ga.report.plots import context_use_curves

    return context_use_curves(curves, path)


# ------------------------------------------------------------------ the command line


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ga ablate",
        description="Run config variants through the pipeline and tabulate their validation (the "
        "paper's ablations); arguments it does not know go to every snakemake call.",
        epilog="e.g. ga ablate --config config/config.yaml --variants config/ablations/pretrain-table2.yaml "
        "--out runs/ablation [--steps 20] [--only default,frobenius_norm] [--set pretrain.val_examples=4] "
        "[--through finetune]",
    )
    parser.add_argument("--config", required=True, type=Path, help="the base run config (YAML)")
    parser.add_argument("--variants", required=True, type=Path, help="variant name -> overrides (YAML)")
    parser.add_argument("--out", required=True, type=Path, help="folder for ablation.md, ablation.json and logs")
    parser.add_argument("--steps", type=int, help="pretrain.steps of every variant (a quick run)")
    parser.add_argument("--only", help="comma-separated variant names (default: all of them)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override one config value of every variant (repeatable)",
    )
    parser.add_argument(
        "--through",
        choices=STAGES,
        default=PRETRAIN_RULE,
        help="run each variant through pretraining (default) or on through fine-tuning",
    )
    parser.add_argument(
        "--finetune-dataset",
        default=FINETUNE_DATASET,
        help=f"the held-out fine-tuning dataset the table shows (default: {FINETUNE_DATASET})",
    )
    parser.add_argument("--cores", default="all", help="snakemake --cores (default: all)")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path("."),
        help="the workflow directory, with the Snakefile (default: the current folder)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """`ga ablate`: each variant runs as `snakemake --configfile CONFIG --config set="run_name=ablation-<variant>
    <overrides>"` in the workflow directory; the table lands in OUT/ablation.md and OUT/ablation.json."""
    args, snakemake_args = parser().parse_known_args(argv)
    only = args.only.split(",") if args.only else None
    try:
        rows = run_ablation(
            args.config,
            args.variants,
            args.out,
            steps=args.steps,
            only=only,
            overrides=args.overrides,
            workdir=args.workdir,
            cores=args.cores,
            snakemake_args=snakemake_args,
            through=args.through,
            finetune_dataset=args.finetune_dataset,
        )
    except ConfigError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 1
    print(f"[ablation] {len(rows)} variant(s): {args.out / TABLE_MARKDOWN}")
    print((args.out / TABLE_MARKDOWN).read_text())
    return 0
