"""summary.json and summary.md: what a pipeline run produced, in one JSON and one Markdown file.

It describes each final output of the stages that ran (model directories, data manifests, metric logs), the wall
time and peak memory Snakemake measured for every rule (runs/{run_name}/benchmarks/*.tsv), and the config the run used.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import yaml

# Fields of a model's config.json worth showing in a summary (absent ones are skipped).
MODEL_CONFIG_FIELDS = (
    "model_type",
    "architectures",
    "num_hidden_layers",
    "hidden_size",
    "intermediate_size",
    "num_attention_heads",
    "num_key_value_heads",
    "vocab_size",
    "torch_dtype",
    "dtype",
    "inter_size",
    "rank",
    "alpha",
    "target_modules",
    "window",
    "norm",
    "svd",
)


def _count_safetensors_parameters(directory: Path) -> int | None:
    """Sum of tensor sizes over the directory's *.safetensors files, read from their headers only."""
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for path in files:
        with open(path, "rb") as fh:
            header_len = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(header_len))
        for name, info in header.items():
            if name == "__metadata__":
                continue
            count = 1
            for dim in info["shape"]:
                count *= dim
            total += count
    return total


def _jsonl_summary(path: Path) -> dict:
    records = 0
    last = None
    with open(path) as fh:
        for line in fh:
            if line.strip():
                records += 1
                last = line
    summary: dict = {"records": records}
    if last is not None:
        try:
            summary["last"] = json.loads(last)
        except json.JSONDecodeError as err:
            summary["last_error"] = f"{path}: last line is not JSON ({err})"
    return summary


def describe_output(path: str | Path) -> dict:
    """What one final output is: size, and for known layouts the facts a reader wants."""
    path = Path(path)
    entry: dict = {"path": str(path), "exists": path.exists()}
    if not path.exists():
        return entry
    if path.is_file():
        entry.update(kind="file", bytes=path.stat().st_size)
        if path.suffix == ".jsonl":
            entry["jsonl"] = _jsonl_summary(path)
        elif path.suffix == ".json":
            entry["json"] = json.loads(path.read_text())
        return entry
    files = [p for p in path.rglob("*") if p.is_file()]
    entry.update(kind="directory", files=len(files), bytes=sum(p.stat().st_size for p in files))
    config_json = path / "config.json"
    if config_json.is_file():
        model_config = json.loads(config_json.read_text())
        entry["config"] = {k: model_config[k] for k in MODEL_CONFIG_FIELDS if k in model_config}
    parameters = _count_safetensors_parameters(path)
    if parameters is not None:
        entry["parameters"] = parameters
    manifests = sorted(path.rglob("manifest.json"))
    if manifests:
        entry["manifests"] = {str(m.relative_to(path)): json.loads(m.read_text()) for m in manifests}
    metrics = sorted(path.rglob("*.jsonl"))
    if metrics:
        entry["jsonl"] = {str(m.relative_to(path)): _jsonl_summary(m) for m in metrics}
    return entry


def read_benchmarks(benchmark_dir: str | Path) -> dict[str, dict]:
    """rule -> {wall_s, max_rss_mb} from Snakemake's benchmark TSVs (last repetition)."""
    result = {}
    for tsv in sorted(Path(benchmark_dir).glob("*.tsv")):
        with open(tsv, newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        if not rows:
            continue
        row = rows[-1]

        def number(key: str, row: dict = row) -> float | None:
            try:
                return float(row[key])
            except (KeyError, ValueError):
                return None

        result[tsv.stem] = {"wall_s": number("s"), "max_rss_mb": number("max_rss")}
    return result


def build_report(run_name: str, config: dict, outputs: list[str], benchmark_dir: str | Path) -> dict:
    return {
        "run_name": run_name,
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "stages": read_benchmarks(benchmark_dir),
        "outputs": [describe_output(p) for p in outputs],
        "config": config,
    }


def render_markdown(report: dict, figures: Sequence[str] = ()) -> str:
    """The summary for people; `figures`: the report's PNG files, as paths relative to the Markdown file (the
    full page with every table is index.html beside it)."""
    lines = [f"# Run `{report['run_name']}`", "", f"Generated {report['generated_at']}.", ""]
    if figures:
        lines += (
            ["The full report, with every table and figure, is `index.html` in this folder.", "", "## Figures", ""]
            + [f"![{Path(figure).stem}]({figure})" for figure in figures]
            + [""]
        )
    lines += ["## Stages", "", "| rule | wall time (s) | peak RSS (MB) |", "|---|---|---|"]
    for rule, bench in report["stages"].items():
        wall = "" if bench["wall_s"] is None else f"{bench['wall_s']:.1f}"
        rss = "" if bench["max_rss_mb"] is None else f"{bench['max_rss_mb']:.0f}"
        lines.append(f"| {rule} | {wall} | {rss} |")
    lines += ["", "## Outputs", ""]
    for out in report["outputs"]:
        facts = [out.get("kind", "missing")]
        if "bytes" in out:
            facts.append(f"{out['bytes'] / 2**20:.1f} MiB")
        if "parameters" in out:
            facts.append(f"{out['parameters']:,} parameters")
        lines.append(f"- `{out['path']}`: {', '.join(facts)}")
        if "config" in out:
            lines.append(f"  - config: {json.dumps(out['config'])}")
        for name, manifest in out.get("manifests", {}).items():
            lines.append(f"  - {name}: {json.dumps(manifest)[:500]}")
        jsonl = out.get("jsonl", {})
        for name, summary in jsonl.items() if "records" not in jsonl else [("", jsonl)]:
            lines.append(
                f"  - {name or 'records'}: {summary['records']} records; last: {json.dumps(summary.get('last'))[:500]}"
            )
    lines += ["", "## Config", "", "```yaml", yaml.safe_dump(report["config"], sort_keys=False).rstrip(), "```", ""]
    return "\n".join(lines)
