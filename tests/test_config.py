"""The run config: generated schema == committed schema, shipped configs, errors that name the key, defaults,
one-value overrides, what each stage depends on, and the training launcher."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from ga import stages
from ga.launch import launcher
from ga.resources import Resources
from ga.run_config import RunConfig, apply_overrides, schema_yaml
from ga.section import ConfigError

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted(p.name for p in (REPO / "config").glob("*.yaml") if p.name != "schema.yaml")


def load(name: str) -> dict:
    return yaml.safe_load((REPO / "config" / name).read_text())


def test_committed_schema_is_the_generated_one():
    """config/schema.yaml is generated from the section dataclasses; regenerate with `ga schema`."""
    assert (REPO / "config" / "schema.yaml").read_text() == schema_yaml()


def test_schema_and_dataclasses_agree_field_by_field():
    """Every dataclass field (but program-set ones) is in the schema with its default-derived requiredness."""
    schema = RunConfig.schema()

    def walk(cls, node, path):
        fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
        assert set(node["properties"]) == set(fields), path
        required = {
            n
            for n, f in fields.items()
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        assert set(node.get("required", [])) == required, path
        hints = cls._hints()
        for name in fields:
            kind = hints[name]
            if isinstance(kind, type) and dataclasses.is_dataclass(kind):
                walk(kind, node["properties"][name], f"{path}.{name}")

    walk(RunConfig, schema, "<run config>")


def test_shipped_configs_are_valid_and_runs_are_separate():
    run_names = {}
    for name in CONFIGS:
        config = RunConfig.load(REPO / "config" / name)
        run_names.setdefault(config.run_name, []).append(name)
    assert {"config.yaml", "smoke.yaml", "paper-mistral.yaml", "paper-llama2.yaml"} <= set(CONFIGS)
    assert all(len(names) == 1 for names in run_names.values()), f"configs share a run_name: {run_names}"


def test_paper_configs_match_the_paper():
    """docs/method.md#paper-settings: o_proj, inter size 1024, rank 128, window 1024; scale 1/16 and 1/8; lr 1e-4
    with 100 warmup steps, then linear decay to 0."""
    for name, model, scale in (
        ("paper-mistral.yaml", "mistralai/Mistral-7B-Instruct-v0.2", 1 / 16),
        ("paper-llama2.yaml", "meta-llama/Llama-2-7b-chat-hf", 1 / 8),
    ):
        config = RunConfig.load(REPO / "config" / name)
        adapter = config.adapter
        assert config.base_model.source == "hub" and config.base_model.id == model
        assert (adapter.inter_size, adapter.rank, adapter.window) == (1024, 128, 1024)
        assert adapter.target_modules == ["o_proj"] and adapter.norm == "svd"
        assert adapter.scale == scale
        schedule = config.pretrain
        assert (schedule.lr, schedule.warmup_steps, schedule.decay, schedule.min_lr_ratio) == (1e-4, 100, "linear", 0)
        assert schedule.lr_factor(schedule.steps) == 0.0  # linear decay to 0, as the authors ran it


def test_defaults_apply_and_unused_source_blocks_may_be_left_out():
    minimal = RunConfig.from_values({"run_name": "x"})
    assert minimal.to_dict() == RunConfig(run_name="x").to_dict()
    assert minimal.pretrain.resources == Resources()
    smoke = load("smoke.yaml")
    assert "slimpajama" not in smoke["pretrain_data"] and "local" not in smoke["pretrain_data"]
    assert RunConfig.from_values(smoke).pretrain_data.slimpajama.split == "train"  # the dataclass default


def set_key(config: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        config = config[key]
    config[last] = value


BAD_CONFIGS = [
    # (what is wrong, mutation of smoke.yaml, text the error must contain)
    ("unknown top-level key", lambda c: c.update(learning_rate=1e-4), "learning_rate: unknown key"),
    ("unknown nested key", lambda c: c["adapter"].update(ranks=4), "adapter.ranks: unknown key"),
    ("program-set key", lambda c: c["adapter"].update(base_model_id="x"), "adapter.base_model_id: unknown key"),
    ("wrong type", lambda c: set_key(c, "adapter.rank", "four"), "adapter.rank: 'four' is not of type 'integer'"),
    ("wrong container type", lambda c: set_key(c, "adapter.target_modules", "o_proj"), "adapter.target_modules:"),
    ("null value", lambda c: set_key(c, "seed", None), "seed: None is not of type 'integer'"),
    ("missing required value", lambda c: c.pop("run_name"), "run_name: missing"),
    ("value outside the choices", lambda c: set_key(c, "base_model.source", "s3"), "base_model.source: 's3'"),
    ("out of range", lambda c: set_key(c, "adapter.inter_size", 0), "adapter.inter_size: 0 is less than"),
    ("run name escaping runs/", lambda c: set_key(c, "run_name", "../x"), "run_name: '../x' does not match"),
    ("rank above inter size", lambda c: set_key(c, "adapter.rank", 64), "adapter.rank: rank 64 exceeds inter_size"),
    ("dead random_config", lambda c: set_key(c, "base_model.source", "embedded"), "base_model.random_config: only"),
    ("adapter and data windows differ", lambda c: set_key(c, "adapter.window", 16), "adapter.window (16) must equal"),
    (
        "more reconstruction than completion windows",
        lambda c: set_key(c, "pretrain_data.reconstruction_windows", 9),
        "pretrain_data.reconstruction_windows: must be in [0, completion_windows=4]",
    ),
    ("unknown data source", lambda c: set_key(c, "pretrain_data.source", "pile"), "pretrain_data.source: 'pile'"),
    ("unknown resource", lambda c: set_key(c, "pretrain.resources", {"gpu": 1}), "pretrain.resources.gpu: unknown"),
    (
        "nodes without gpus",
        lambda c: set_key(c, "pretrain.resources", {"nodes": 2}),
        "pretrain.resources.nodes: 2 nodes need gpus >= 1",
    ),
]


@pytest.mark.parametrize("what,mutate,message", BAD_CONFIGS, ids=[b[0] for b in BAD_CONFIGS])
def test_bad_config_is_rejected_naming_the_key(what, mutate, message):
    config = load("smoke.yaml")
    mutate(config)
    with pytest.raises(ConfigError) as err:
        RunConfig.from_values(config, source="bad.yaml")
    assert message in str(err.value), str(err.value)
    assert "bad.yaml" in str(err.value)


def test_schema_lists_every_bad_key_at_once():
    config = load("smoke.yaml")
    config["adapter"]["rnak"] = 4
    config["pretrain"]["steps"] = 0
    with pytest.raises(ConfigError) as err:
        RunConfig.from_values(config)
    assert "adapter.rnak: unknown key" in str(err.value) and "pretrain.steps: 0 is less than" in str(err.value)


def test_one_nested_value_can_be_overridden():
    config = RunConfig.load(
        REPO / "config" / "smoke.yaml",
        ["pretrain.steps=400", "adapter.target_modules=[o_proj]", "pretrain_data.mixture={python_docs: 1.0}"],
    )
    assert config.pretrain.steps == 400 and isinstance(config.pretrain.steps, int)
    assert config.pretrain_data.mixture == {"python_docs": 1.0}
    untouched = RunConfig.load(REPO / "config" / "smoke.yaml")
    assert config.pretrain.lr == untouched.pretrain.lr  # one value changed, the rest of the section kept
    with pytest.raises(ConfigError, match="pretrain.stpes: unknown key"):
        RunConfig.load(REPO / "config" / "smoke.yaml", ["pretrain.stpes=4"])
    with pytest.raises(ConfigError, match="expected key.path=value"):
        apply_overrides({}, ["pretrain.steps"])
    with pytest.raises(ConfigError, match="seed is not a section"):
        apply_overrides({"seed": 0}, ["seed.x=1"])


def test_depends_on_leaves_out_values_that_change_no_output():
    base = RunConfig.load(REPO / "config" / "smoke.yaml")
    for override, changes, changes_resume in [
        ("pretrain.checkpoint_every=1", False, False),
        ("pretrain.resources.gpus=2", False, False),
        ("pretrain.num_threads=2", False, False),
        ("pretrain.val_examples=3", True, False),  # validation is an output, but a resumed run may change it
        ("pretrain.lr=0.5", True, True),
    ]:
        changed = RunConfig.load(REPO / "config" / "smoke.yaml", [override])
        assert (stages.depends_on("pretrain", changed) != stages.depends_on("pretrain", base)) is changes, override
        assert (changed.pretrain.resumable_depends_on() != base.pretrain.resumable_depends_on()) is changes_resume
    data = RunConfig.load(REPO / "config" / "smoke.yaml", ["pretrain_data.tokenize_batch_documents=3"])
    for stage in ("pretrain_documents", "pretrain_data"):
        assert stages.depends_on(stage, data) == stages.depends_on(stage, base)


def test_every_stage_has_the_stage_shape():
    config = RunConfig.load(REPO / "config" / "smoke.yaml")
    wildcard_values = {
        "dataset": config.sft_data.datasets[0],  # one job of each wildcard rule
        "benchmark": config.knowledge_eval.benchmarks[0],
        "method": config.knowledge_eval.methods[0],
        "length": str(config.knowledge_eval.lengths[0]),
        "task": "keyword_classification-0",
        "k": "4",
        "seed": "13",
        "batch": "0",
    }
    per_family = {
        "icl": {"benchmark": config.icl_eval.benchmarks[0], "method": config.icl_eval.methods[0]},
        "msc": {"benchmark": config.msc_eval.benchmarks[0], "method": config.msc_eval.methods[0]},
    }
    for name in stages.STAGE_NAMES:
        module = stages.load(name)
        assert module.STAGE.name == name
        assert callable(module.run) and callable(module.depends_on)
        values = {**wildcard_values, **per_family.get(name.split("_")[0], {})}
        wildcards = {key: values[key] for key in module.STAGE.wildcards}
        assert isinstance(module.depends_on(config, **wildcards), dict)


def test_launcher_follows_the_resources():
    assert launcher(Resources()) == "ga"
    assert launcher(Resources(gpus=8)) == "torchrun --standalone --nproc_per_node 8 -m ga.cli"
    multi = launcher(Resources(gpus=8, nodes=4))
    assert multi.startswith("srun --nodes 4 --ntasks-per-node 1 torchrun --nnodes 4 --nproc_per_node 8")
    assert "--rdzv-backend c10d" in multi and '--rdzv-id "$SLURM_JOB_ID"' in multi and multi.endswith("-m ga.cli")
    assert "$(scontrol show hostnames" in multi


def test_the_embedded_long_overlay_changes_only_the_training_lengths_and_pinned_data():
    """config/overlays/embedded-long.yaml laid over the embedded default as Snakemake merges config files (key by key):
    the default with 360 pretraining steps, validated every 60, longer instruction tuning, three records per entity,
    and the data its numbers were measured with (all the offline text, 300 entities) pinned, under its own run name;
    every other setting stays the default's."""
    from snakemake.utils import update_config

    merged = load("config.yaml")
    update_config(merged, load("overlays/embedded-long.yaml"))

    def flat(values: dict) -> dict:  # section.key -> value, one level down
        return {
            f"{section}.{key}" if isinstance(value, dict) else section: inner
            for section, value in values.items()
            for key, inner in (value.items() if isinstance(value, dict) else [(None, value)])
        }

    default = flat(RunConfig.from_values(load("config.yaml")).to_dict())
    long = flat(RunConfig.from_values(merged).to_dict())
    assert long["run_name"] == "embedded-long" and long["pretrain.steps"] == 360
    assert long["pretrain.loss_parts"] == default["pretrain.loss_parts"] == ["reconstruction"]
    assert {key for key in default if long[key] != default[key]} == {
        "run_name",
        "pretrain_data.embedded",
        "pretrain.steps",
        "pretrain.eval_every",
        "pretrain.checkpoint_every",
        "pretrain.resources",
        "sft_sources.entity_qa",
        "sft_sources.synthetic_icl",
        "finetune.steps",
        "finetune.warmup_steps",
        "finetune.checkpoint_every",
    }
    assert long["pretrain_data.embedded"] == {**default["pretrain_data.embedded"], "python_docs": True, "entities": 300}
    entity_default, entity_long = default["sft_sources.entity_qa"], long["sft_sources.entity_qa"]
    assert entity_long["distractor_entities"] == 0 and entity_long["records_per_entity"] == 3
    assert entity_long["entities"] == long["sft_sources.synthetic_icl"]["entities"] == 300
    assert {key for key in entity_default if entity_long[key] != entity_default[key]} == {
        "entities",
        "records_per_entity",
    }
    assert long["finetune.steps"] > default["finetune.steps"] and long["finetune.lr"] == 1.0e-3
