"""The evaluation families' shape (ga/eval/family.py, docs/evaluation-families.md): every method of every family has
one registry entry, and the stages' optional inputs, the job params, the rules' inputs and resources come from it."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest

from ga import stages
from ga.eval.family import MethodEntry, MethodRegistry, check_method_inputs
from ga.eval.icl import config as icl_config
from ga.eval.icl import methods as icl_methods
from ga.eval.knowledge import config as knowledge_config
from ga.eval.knowledge import methods as knowledge_methods
from ga.eval.msc import config as msc_config
from ga.eval.msc import methods as msc_methods
from ga.run_config import RunConfig
from ga.section import ConfigError

FAMILIES = {  # section, its config module's method names, its registry, its eval stage
    "knowledge_eval": (knowledge_config.METHODS, knowledge_methods.REGISTRY, "knowledge_eval"),
    "icl_eval": (icl_config.ICL_METHODS, icl_methods.REGISTRY, "icl_eval"),
    "msc_eval": (msc_config.METHODS, msc_methods.REGISTRY, "msc_eval"),
}
EXPECTED_METHODS = {
    "knowledge_eval": (
        "generative_adapter",
        "closed_book",
        "in_context",
        "bm25",
        "continual_pretraining",
        "qa_finetuning",
    ),
    "icl_eval": ("generative_adapter", "zero_shot", "few_shot", "few_shot_finetuning"),
    "msc_eval": ("generative_adapter", "closed_book", "in_context", "other_user_adapter"),
}


@pytest.mark.parametrize("section", sorted(FAMILIES))
def test_every_method_has_one_registry_entry(section):
    names, registry, _ = FAMILIES[section]
    assert names == registry.names == EXPECTED_METHODS[section]
    assert all(isinstance(entry, MethodEntry) and callable(entry.build) for entry in registry)


@pytest.mark.parametrize("section", sorted(FAMILIES))
def test_resources_section_is_generated_from_the_registry(section):
    _, registry, _ = FAMILIES[section]
    resources = getattr(RunConfig(run_name="families"), section).resources
    schema = type(resources).json_schema()
    assert list(schema["properties"]) == list(registry.names)
    for entry in registry:
        assert schema["properties"][entry.name]["description"].startswith(entry.jobs)


@pytest.mark.parametrize("section", sorted(FAMILIES))
def test_stage_optional_inputs_are_the_registry_inputs(section):
    _, registry, stage_name = FAMILIES[section]
    stage = stages.load(stage_name).STAGE
    assert stage.optional == registry.optional_inputs()
    assert set(stage.optional) <= set(stage.inputs)


def test_method_settings_end_the_job_params():
    config = RunConfig(run_name="families")
    params = stages.depends_on("knowledge_eval", config, benchmark="entities", method="bm25", length="512")
    assert params["bm25"] == config.knowledge_eval.bm25.depends_on()
    assert "bm25" not in stages.depends_on(
        "knowledge_eval", config, benchmark="entities", method="closed_book", length="512"
    )
    params = stages.depends_on("msc_eval", config, benchmark="synthetic_chat", batch="0", method="other_user_adapter")
    assert params["encode_strategy"] == config.msc_eval.encode_strategy
    seeds = config.icl_eval.seeds
    params = stages.depends_on(
        "icl_eval", config, benchmark="synthetic_icl", task="t", k="4", seed=str(seeds[0]), method="few_shot_finetuning"
    )
    assert params["validation_seed"] == icl_methods.validation_seed(seeds, seeds[0])


def test_missing_method_input_is_a_one_line_config_error():
    entry = knowledge_methods.REGISTRY["qa_finetuning"]
    with pytest.raises(ConfigError, match="qa_finetuning needs --qa-lora"):
        check_method_inputs("knowledge_eval", entry, SimpleNamespace(qa_lora=None))
    check_method_inputs("knowledge_eval", entry, SimpleNamespace(qa_lora="somewhere"))


def test_registry_rejects_unknown_and_repeated_names():
    registry = knowledge_methods.REGISTRY
    with pytest.raises(ValueError, match="unknown method 'rag'"):
        registry["rag"]
    entry = registry["closed_book"]
    with pytest.raises(ValueError, match="distinct"):
        MethodRegistry("x", entry, entry)


def test_rules_take_method_inputs_and_resources_from_the_registry():
    rules = {name: open(f"rules/{name}.smk").read() for name in ("eval", "icl", "msc")}
    for text in rules.values():
        assert "method_inputs(" in text and "method_resource(" in text
        assert 'wildcards.method == "' not in text


def test_family_config_modules_import_no_work_code():
    """The families' config modules load none of ga.eval's work modules (contexts files, runner, jobs, results,
    ...), only the light registry and the shared method classes."""
    code = (
        "import sys\n"
        "import ga.eval.knowledge.config, ga.eval.icl.config, ga.eval.msc.config, ga.eval.family\n"
        "heavy = [m for m in ('torch', 'polars', 'pandera', 'pyarrow') if m in sys.modules]\n"
        "eval_heavy = [m for m in sys.modules if m.startswith('ga.eval') and m not in (\n"
        "    'ga.eval', 'ga.eval.family', 'ga.eval.config', 'ga.eval.contexts', 'ga.eval.methods',\n"
        "    'ga.eval.costs', 'ga.eval.generation') and not m.endswith(('.config', '.methods', '__init__'))\n"
        "    and m not in ('ga.eval.knowledge', 'ga.eval.icl', 'ga.eval.msc')]\n"
        "print(eval_heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
