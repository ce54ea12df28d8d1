"""Shared pytest fixtures: real base models (the embedded SmolLM2 and a tiny random Llama with its tokenizer)."""
from __future__ import annotations

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
"""LlamaConfig fields of the tiny random model used by fast tests (vocab comes from the SmolLM2 tokenizer)."""


@pytest.fixture
def tiny_llama_config() -> dict:
    """A fresh copy of TINY_LLAMA_CONFIG (tests may modify it)."""
    return dict(TINY_LLAMA_CONFIG)


@pytest.fixture(scope="session")
def embedded_dir() -> Path:
    """The embedded SmolLM2-135M-Instruct model dir (converted once into $GA_CACHE_DIR or ~/.cache/ga)."""
    from ga.base import embedded_model_dir

    return embedded_model_dir()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, embedded_dir) -> Path:
    """A tiny randomly initialised Llama (TINY_LLAMA_CONFIG, seed 0) saved with the embedded SmolLM2 tokenizer."""
    from ga.base import tiny_random_model_dir

    return tiny_random_model_dir(tmp_path_factory.mktemp("tiny") / "model", TINY_LLAMA_CONFIG,
                                 tokenizer_from=embedded_dir, seed=0)
