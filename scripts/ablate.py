#!/usr/bin/env python
"""Run the paper's pretraining ablations (config/ablations/pretrain-table2.yaml) on a base config and write a table.

    python scripts/ablate.py --config config/config.yaml --variants config/ablations/pretrain-table2.yaml \\
        --out runs/ablation [--steps 20] [--only default,frobenius_norm] [--set pretrain.val_examples=4] \\
        [--through finetune]

Each variant runs as `snakemake --configfile CONFIG --config set="run_name=ablation-<variant> <overrides>"` in the
workflow directory (default: this checkout); the table lands in OUT/ablation.md and OUT/ablation.json
(ga/ablation.py).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's `ga`, also when run as a plain script

from ga.ablation import FINETUNE_DATASET, PRETRAIN_RULE, STAGES, run_ablation  # noqa: E402
from ga.section import ConfigError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path, help="the base run config (YAML)")
    parser.add_argument("--variants", required=True, type=Path, help="variant name -> overrides (YAML)")
    parser.add_argument("--out", required=True, type=Path, help="folder for ablation.md, ablation.json and logs")
    parser.add_argument("--steps", type=int, help="pretrain.steps of every variant (a quick run)")
    parser.add_argument("--only", help="comma-separated variant names (default: all of them)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override one config value of every variant (repeatable)")
    parser.add_argument("--through", choices=STAGES, default=PRETRAIN_RULE,
                        help="run each variant through pretraining (default) or on through fine-tuning")
    parser.add_argument("--finetune-dataset", default=FINETUNE_DATASET,
                        help=f"the held-out fine-tuning dataset the table shows (default: {FINETUNE_DATASET})")
    parser.add_argument("--cores", default="all", help="snakemake --cores (default: all)")
    parser.add_argument("--workdir", type=Path, default=REPO, help="the workflow directory (default: this checkout)")
    args, snakemake_args = parser.parse_known_args(argv)
    only = args.only.split(",") if args.only else None
    try:
        rows = run_ablation(args.config, args.variants, args.out, steps=args.steps, only=only,
                            overrides=args.overrides, workdir=args.workdir, cores=args.cores,
                            snakemake_args=snakemake_args, through=args.through,
                            finetune_dataset=args.finetune_dataset)
    except ConfigError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 1
    print(f"[ablation] {len(rows)} variant(s): {args.out / 'ablation.md'}")
    print((args.out / "ablation.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
