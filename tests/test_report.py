"""ga report: describes the outputs later stages write (manifests, metric logs, safetensors dirs)."""

from __future__ import annotations

import json

import torch
import yaml
from safetensors.torch import save_file

from ga.cli import main as ga_main
from ga.report import describe_output, read_benchmarks


def test_report_describes_models_manifests_metrics_and_benchmarks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # runs/{run_name}/ is relative to the workflow folder
    model = tmp_path / "runs" / "r" / "pretrain" / "generator"
    model.mkdir(parents=True)
    save_file({"a": torch.zeros(3, 4), "b": torch.zeros(5)}, model / "model.safetensors")
    (model / "config.json").write_text(json.dumps({"inter_size": 16, "rank": 4, "unrelated": 1}))
    data = tmp_path / "runs" / "r" / "data" / "pretrain"
    (data / "train").mkdir(parents=True)
    (data / "train" / "manifest.json").write_text(json.dumps({"rows": 7}))
    metrics = tmp_path / "runs" / "r" / "pretrain" / "metrics.jsonl"
    metrics.write_text('{"step": 1, "loss": 3.0}\n{"step": 2, "loss": 2.5}\n')
    bench = tmp_path / "runs" / "r" / "benchmarks"
    bench.mkdir(parents=True)
    (bench / "pretrain.tsv").write_text("s\th:m:s\tmax_rss\n12.5\t0:00:12\t321.0\n")

    described = describe_output(model)
    assert described["parameters"] == 3 * 4 + 5
    assert described["config"] == {"inter_size": 16, "rank": 4}
    assert describe_output(data)["manifests"] == {"train/manifest.json": {"rows": 7}}
    assert describe_output(metrics)["jsonl"] == {"records": 2, "last": {"step": 2, "loss": 2.5}}
    assert describe_output(tmp_path / "absent") == {"path": str(tmp_path / "absent"), "exists": False}
    assert read_benchmarks(bench) == {"pretrain": {"wall_s": 12.5, "max_rss_mb": 321.0}}

    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump({"run_name": "r", "seed": 0, "adapter": {"window": 64}, "pretrain_data": {"window": 64}})
    )
    out_json, out_md = tmp_path / "report" / "summary.json", tmp_path / "report" / "summary.md"
    out_html, out_plots = tmp_path / "report" / "index.html", tmp_path / "report" / "plots"
    assert (
        ga_main(
            [
                "report",
                "--config",
                str(config),
                "--json",
                str(out_json),
                "--markdown",
                str(out_md),
                "--html",
                str(out_html),
                "--plots",
                str(out_plots),
                "--outputs",
                str(model),
                str(data),
                str(metrics),
            ]
        )
        == 0
    )
    report = json.loads(out_json.read_text())
    assert [o["path"] for o in report["outputs"]] == [str(model), str(data), str(metrics)]
    assert report["stages"]["pretrain"]["wall_s"] == 12.5
    markdown = out_md.read_text()
    assert "| pretrain | 12.5 | 321 |" in markdown and "17 parameters" in markdown
    assert "plots/stages.png" in markdown and (out_plots / "stages.png").is_file()
    assert out_html.read_text().startswith("<!DOCTYPE html>")
    assert not list((tmp_path / "report").glob(".*tmp")), "temporary files left behind"
