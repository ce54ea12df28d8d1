"""Table 2's ablations (ga/ablation.py, config/ablations/pretrain-table2.yaml): every variant is a valid config of
every setting that changes training only, a variant's Snakemake call plans its own run, and on the smoke config the
ablation runs and writes its table."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from test_pipeline import CONFIGS, REPO, checkout, explain, planned_jobs, workflow_env

from ga.ablation import (
    COLUMNS,
    CURVE_PLOT,
    TABLE_JSON,
    TABLE_MARKDOWN,
    Variant,
    ablation_markdown,
    context_gap,
    finetune_cells,
    load_variants,
    run_ablation,
    run_overrides,
    select,
    snakemake_command,
    validation_curve,
    validation_target,
    write_curve_plot,
)
from ga.run_config import RunConfig
from ga.section import ConfigError

TABLE2 = REPO / "config" / "ablations" / "pretrain-table2.yaml"
BOTH_PARTS = ["completion", "reconstruction"]
TABLE2_SETTINGS = {  # variant -> the values it must have, whatever the base config (the paper's default: both parts)
    "default": {"pretrain.loss_parts": BOTH_PARTS},
    "reconstruction_only": {"pretrain.loss_parts": ["reconstruction"]},
    "completion_only": {"pretrain.loss_parts": ["completion"]},
    "frobenius_norm": {"adapter.norm": "frobenius", "pretrain.loss_parts": BOTH_PARTS},
    "ffn_down_proj": {"adapter.target_modules": ["mlp.down_proj"], "pretrain.loss_parts": BOTH_PARTS},
}


def value_at(config: RunConfig, dotted: str):
    node = config.to_dict()
    for part in dotted.split("."):
        node = node[part]
    return node


@pytest.mark.parametrize("name", CONFIGS)
def test_table2_variants_are_valid_configs_that_change_training_only(name):
    variants = load_variants(TABLE2)
    assert [variant.name for variant in variants] == list(TABLE2_SETTINGS)
    base = RunConfig.load(REPO / "config" / name)
    default = RunConfig.load(REPO / "config" / name, run_overrides(variants[0], ["pretrain.steps=3"]))
    for variant in variants:
        config = RunConfig.load(REPO / "config" / name, run_overrides(variant, ["pretrain.steps=3"]))
        assert config.run_name == f"ablation-{variant.name}" and config.pretrain.steps == 3
        for key, value in TABLE2_SETTINGS[variant.name].items():
            assert value_at(config, key) == value, (variant.name, key)
        if variant.name != "default":  # each ablation differs from the paper's default in what it names
            assert any(value_at(default, key) != value for key, value in TABLE2_SETTINGS[variant.name].items())
        # the data stages see the same values: a variant never changes the examples it trains on
        assert config.pretrain_data.documents_depends_on() == base.pretrain_data.documents_depends_on()
        assert config.pretrain_data.examples_depends_on() == base.pretrain_data.examples_depends_on()


def test_variants_file_errors_name_the_variant(tmp_path):
    bad_name = tmp_path / "bad-name.yaml"
    bad_name.write_text("'has space': []\n")
    with pytest.raises(ConfigError, match="has space"):
        load_variants(bad_name)
    bad_overrides = tmp_path / "bad-overrides.yaml"
    bad_overrides.write_text("frob: adapter.norm=frobenius\n")
    with pytest.raises(ConfigError, match="frob: expected a list"):
        load_variants(bad_overrides)
    with pytest.raises(ConfigError, match="not valid YAML"):
        (tmp_path / "broken.yaml").write_text("typo: [a=[b]]\n")
        load_variants(tmp_path / "broken.yaml")
    with pytest.raises(ConfigError, match="unknown variant"):
        select(load_variants(TABLE2), ["frobenius"])
    unknown_key = tmp_path / "unknown-key.yaml"
    unknown_key.write_text("typo:\n  - pretrain.loss_part=[completion]\n")
    with pytest.raises(ConfigError, match="(?s)variant typo: .*pretrain.loss_part: unknown key"):
        run_ablation(REPO / "config" / "smoke.yaml", unknown_key, tmp_path / "out", workdir=REPO)
    assert not (tmp_path / "out").exists(), "a bad variant must stop the ablation before any job"


def test_markdown_table_has_a_row_per_variant_and_marks_missing_values():
    rows = [
        {"variant": "default", "overrides": [], **{key: 2.0 for key, _ in COLUMNS}, "pretrain_minutes": 1.5},
        {
            "variant": "no_recon",
            "overrides": ["pretrain_data.reconstruction_windows=0"],
            **{key: (None if "reconstruction" in key else 3.0) for key, _ in COLUMNS},
            "pretrain_minutes": None,
        },
    ]
    text = ablation_markdown(rows, "config/config.yaml", ["pretrain.steps=2"])
    table = [line for line in text.splitlines() if line.startswith(("| default", "| no_recon"))]
    assert len(table) == 4  # the results and the overrides table
    assert table[0].count("2.00") == len(COLUMNS) and table[0].endswith("| 1.50 |")
    # 4 reconstruction columns, the own-vs-other gap (made of reconstruction numbers) and the minutes
    assert table[1].count("–") == 6 and "`pretrain_data.reconstruction_windows=0`" in table[3]
    assert "`pretrain.steps=2`" in text
    assert "ft. own F1" not in text and "## Over training" not in text  # no variant was fine-tuned or validated twice


def test_the_context_gap_is_one_minus_own_over_other_reconstruction():
    assert context_gap({"own_reconstruction_ppl": 21.0, "other_reconstruction_ppl": 30.0}) == pytest.approx(30.0)
    assert context_gap({"own_reconstruction_ppl": 21.0}) is None


def test_finetuned_variants_show_one_datasets_arms_and_curves_show_every_validation(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    records = [
        {"kind": "train", "step": 1, "elapsed_s": 30.0},
        {"kind": "train", "step": 2, "elapsed_s": 90.0},
        {
            "kind": "val",
            "step": 2,
            "own_reconstruction_ppl": 20.0,
            "other_reconstruction_ppl": 40.0,
            "none_reconstruction_ppl": 80.0,
        },
        {"kind": "train", "step": 3, "elapsed_s": 120.0},
        {
            "kind": "val",
            "step": 3,
            "own_reconstruction_ppl": 10.0,
            "other_reconstruction_ppl": 40.0,
            "none_reconstruction_ppl": 80.0,
        },
    ]
    metrics.write_text("\n".join(json.dumps(record) for record in records) + "\n")
    curve = validation_curve(metrics)
    assert [(p["step"], p["train_minutes"], p["own_vs_other_reconstruction"]) for p in curve] == [
        (2, 1.5, pytest.approx(50.0)),
        (3, 2.0, pytest.approx(75.0)),
    ]
    assert validation_curve(tmp_path / "absent.jsonl") == []
    finetune = {
        "own_entity_qa_ppl": 5.0,
        "other_entity_qa_ppl": 9.0,
        "none_entity_qa_ppl": 99.0,
        "own_chat_ppl": 1.0,
        "own_vs_other_entity_qa_lower": 13,
        "own_vs_other_entity_qa_examples": 16,
        "own_vs_other_entity_qa_sign_p": 0.0213,
        "answer_f1": {"per_dataset": {"entity_qa": {"own_f1": 0.5, "other_f1": 0.25, "none_f1": 0.0}}},
    }
    cells = finetune_cells(finetune, "entity_qa")
    assert cells == {
        "finetune_own_ppl": 5.0,
        "finetune_other_ppl": 9.0,
        "finetune_none_ppl": 99.0,
        "finetune_own_f1": 50.0,
        "finetune_other_f1": 25.0,
        "finetune_none_f1": 0.0,
        "finetune_own_lower": "13/16",
        "finetune_own_lower_p": 0.0213,
    }
    assert finetune_cells(finetune, "chat")["finetune_other_ppl"] is None  # absent numbers stay absent
    row = {
        "variant": "base_kv",
        "overrides": ["adapter.context_init=base_kv"],
        **{key: 2.0 for key, _ in COLUMNS},
        "pretrain_minutes": 3.0,
        "curve": curve,
        **cells,
        "finetune_dataset": "entity_qa",
        "finetune_minutes": 1.0,
    }
    text = ablation_markdown([row], "config/config.yaml", [])
    header = next(line for line in text.splitlines() if line.startswith("| variant | own rec."))
    assert header.endswith("| ft. own F1 | ft. other F1 | ft. none F1 | ft. own < other | sign test p | finetune min |")
    result = next(line for line in text.splitlines() if line.startswith("| base_kv | 2.00"))
    assert result.endswith("| 5.00 | 9.00 | 99.00 | 50.00 | 25.00 | 0.00 | 13/16 | 0.02 | 1.00 |")
    tiny_p = ablation_markdown([{**row, "finetune_own_lower_p": 0.00031}], "config/config.yaml", [])
    assert "| 13/16 | 0.00031 |" in tiny_p  # a small p-value keeps two significant digits
    assert "held-out `entity_qa` records" in text
    assert "| base_kv | 3 | 2.00 | 10.00 | 40.00 | 80.00 | 75.00 |" in text
    plot = write_curve_plot([row, {**row, "variant": "one_validation", "curve": curve[:1]}], tmp_path / "curves.png")
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert write_curve_plot([{**row, "curve": curve[:1]}], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


@pytest.mark.parametrize("common", [["pretrain.steps=2"], []], ids=["quoted-override-inside", "quoted-override-last"])
def test_a_variants_snakemake_call_plans_its_own_run(tmp_path, common):
    """The variant with a list-valued override, quoted through `--config set=...`, plans the pretrain rule of its own
    run directory with that value, also when that quoted override comes last (Snakemake strips a quote at either end
    of a --config value)."""
    root = checkout(tmp_path / "checkout")
    variant = Variant("ffn_down_proj", ("adapter.target_modules=[mlp.down_proj]",))
    overrides = run_overrides(variant, common)
    config = RunConfig.load(root / "config" / "smoke.yaml", overrides)
    command = snakemake_command("config/smoke.yaml", overrides, validation_target(config), "1", ["-n"])
    result = subprocess.run(
        command, cwd=root, env=workflow_env(), capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False
    )
    assert result.returncode == 0, explain(result)
    assert planned_jobs(result) == {"fetch_base": 1, "pretrain_documents": 1, "pretrain_data": 1, "pretrain": 1}
    assert "runs/ablation-ffn_down_proj/pretrain/validation.json" in result.stdout
    assert "mlp.down_proj" in result.stdout  # the rule's params: the adapter section with the override


@pytest.mark.slow
def test_smoke_ablation_writes_its_table(tmp_path):
    root = checkout(tmp_path / "checkout")
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "ga.cli",
        "ablate",
        "--config",
        "config/smoke.yaml",
        "--variants",
        "config/ablations/pretrain-table2.yaml",
        "--out",
        str(out),
        "--steps",
        "2",
        "--only",
        "default,frobenius_norm",
        "--workdir",
        str(root),
        "--cores",
        "1",
        "--through",
        "finetune",
        "--set",
        "pretrain.eval_every=1",
    ]
    result = subprocess.run(
        command,
        cwd=root,
        env=workflow_env(),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=1800,
        check=False,
    )
    assert result.returncode == 0, explain(result, root)
    rows = json.loads((out / TABLE_JSON).read_text())
    assert [row["variant"] for row in rows] == ["default", "frobenius_norm"]
    for row in rows:
        assert row["validation"]["step"] == 2
        for key in (
            "own_reconstruction_ppl",
            "own_completion_ppl",
            "own_first_window_ppl",
            "none_completion_ppl",
            "other_reconstruction_ppl",
        ):
            assert math.isfinite(row[key]), (row["variant"], key)
        assert row["pretrain_minutes"] > 0
        assert row["own_vs_other_reconstruction"] == pytest.approx(
            100 * (1 - row["own_reconstruction_ppl"] / row["other_reconstruction_ppl"])
        )
        assert (root / "runs" / row["run_name"] / "pretrain" / "generator").is_dir()
        assert (root / "runs" / row["run_name"] / "finetune" / "generator").is_dir()
        assert row["finetune_minutes"] > 0 and row["finetune_dataset"] == "entity_qa"
        for arm in ("own", "other", "none"):
            assert math.isfinite(row[f"finetune_{arm}_ppl"]) and 0 <= row[f"finetune_{arm}_f1"] <= 100
        assert [point["step"] for point in row["curve"]] == [1, 2]  # eval_every 1: a validation per step
    # a different normalization gives a different adapter; window 0 has none, so it is the same base model
    assert rows[0]["own_reconstruction_ppl"] != rows[1]["own_reconstruction_ppl"]
    assert rows[0]["own_first_window_ppl"] == pytest.approx(rows[1]["own_first_window_ppl"], rel=1e-6)
    markdown = (out / TABLE_MARKDOWN).read_text()
    assert "| default |" in markdown and "| frobenius_norm |" in markdown and markdown in result.stdout
    assert "ft. own F1" in markdown and "## Over training" in markdown
    assert (out / CURVE_PLOT).read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("variants_file", sorted(p.name for p in (REPO / "config" / "ablations").glob("*.yaml")))
def test_every_shipped_variant_is_a_valid_config_of_the_embedded_default(variants_file):
    for variant in load_variants(REPO / "config" / "ablations" / variants_file):
        RunConfig.load(REPO / "config" / "config.yaml", run_overrides(variant, []))
