"""Greedy answers to many prompts: left-padded batches with a KV cache (Transformers `generate`), stopping at a newline.

Used by every knowledge-QA method (docs/method.md#knowledge-acquisition): the plain base model, the base model inside
`GenerativeAdapter.adapted(state)`, or a PEFT model wrapping it. Prompts are token ids made by the shared formatter
(`ga.format`); this module only batches, generates and decodes.

Prompts are sorted by length before they are cut into batches (less padding), and the answers are returned in the
prompts' order. Prompts that all start with the same tokens (in-context prompting: the context before each question)
can share a `Prefix`: its KV cache is computed once (`encode_prefix`) and every batch continues from a copy of it, so
each prompt runs only its own suffix; the padding of a batch then sits between the prefix and the suffixes, masked
like left padding (tests/test_eval_methods.py checks cached against uncached). Left padding does not change a greedy answer: padded positions are masked and position ids follow
the attention mask, so every prompt sees exactly its own tokens (tests/test_eval_methods.py checks batched against
one-by-one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

STOP_TEXT = "\n"
"""An answer ends at its first newline (the paper's evaluations stop there)."""


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int
    batch_size: int
    """Prompts generated together in one left-padded batch."""
    max_batch_tokens: int | None = None
    """At most this many (padded) prompt positions per batch: long prompts go in smaller batches (None: no cap)."""
    fixed_length: bool = False
    """Generate exactly `max_new_tokens` tokens, ignoring newline and EOS (benchmarks timing equal work); the text
    is still cut at its first newline."""


@dataclass(frozen=True)
class Generation:
    text: str
    """The decoded answer, cut at its first newline and stripped."""
    prompt_tokens: int
    new_tokens: int
    """Tokens this prompt generated up to and including its stop (newline or EOS), as the model ran them."""
    notes: dict = field(default_factory=dict)
    """What the method that made the prompt records about it (e.g. context tokens truncated)."""
    cached_tokens: int = 0
    """Tokens of the prompt read from a shared prefix's KV cache (not run for this prompt); `prompt_tokens` are the
    ones it ran."""


@dataclass
class Prefix:
    """Tokens every prompt of a `generate` call starts with, run once: `cache` is their KV cache."""

    ids: list[int]
    cache: object
    """A Transformers `Cache` after one forward over `ids` (batch of one), never modified by `generate`."""


def encode_prefix(model, ids: Sequence[int]) -> Prefix:
    """Run `ids` once and keep their KV cache for `generate(..., prefix=...)`."""
    import torch

    if len(ids) == 0:
        raise ValueError("encode_prefix: the prefix needs at least one token")
    device = next(model.parameters()).device
    with torch.no_grad():
        output = model(input_ids=torch.as_tensor([list(ids)], device=device), use_cache=True, logits_to_keep=1)
    return Prefix(list(ids), output.past_key_values)


def pad_id(tokenizer) -> int:
    """The token that pads batches: the tokenizer's pad token, else EOS (`ga.base.load_base` always sets one)."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def batches(lengths: Sequence[int], batch_size: int, max_batch_tokens: int | None) -> list[list[int]]:
    """Indices of the prompts, shortest first, cut into batches of at most `batch_size` prompts and (when given)
    `max_batch_tokens` padded positions; a prompt longer than the cap goes alone."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    result, current = [], []
    for index in order:
        padded = (len(current) + 1) * lengths[index]  # sorted: the new prompt is the longest of its batch
        if current and (len(current) == batch_size or (max_batch_tokens is not None and padded > max_batch_tokens)):
            result.append(current)
            current = []
        current.append(index)
    if current:
        result.append(current)
    return result


def _cut(text: str) -> str:
    return text.split(STOP_TEXT, 1)[0].strip()


def _new_token_counts(new_ids, eos_ids: set[int], tokenizer, fixed_length: bool) -> list[int]:
    """Tokens each row generated up to and including its first stop (EOS, or the token that completes a newline)."""
    counts = []
    for row in new_ids.tolist():
        if fixed_length:
            counts.append(len(row))
            continue
        count, text = len(row), ""
        for position, token in enumerate(row):
            if token in eos_ids:
                count = position + 1
                break
            text += tokenizer.decode([token])
            if STOP_TEXT in text:
                count = position + 1
                break
        counts.append(count)
    return counts


def generate(
    model, tokenizer, prompts: Sequence[Sequence[int]], settings: GenerationSettings, prefix: Prefix | None = None
) -> list[Generation]:
    """Greedy generations for `prompts` (token ids), in their order (see the module doc); with `prefix`, each prompt
    is what follows the prefix's tokens."""
    import copy

    import torch
    from transformers import StoppingCriteriaList, StopStringCriteria

    if not prompts:
        return []
    if any(len(prompt) == 0 for prompt in prompts):
        raise ValueError("generate: every prompt needs at least one token")
    padding = pad_id(tokenizer)
    eos_id = tokenizer.eos_token_id
    device = next(model.parameters()).device
    eos_ids = set() if eos_id is None else {eos_id}
    stopping = None if settings.fixed_length else StoppingCriteriaList([StopStringCriteria(tokenizer, [STOP_TEXT])])
    results: list[Generation | None] = [None] * len(prompts)
    for batch in batches([len(p) for p in prompts], settings.batch_size, settings.max_batch_tokens):
        width = max(len(prompts[i]) for i in batch)
        input_ids = torch.full((len(batch), width), padding, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, index in enumerate(batch):
            prompt = torch.as_tensor(list(prompts[index]), dtype=torch.long)
            input_ids[row, width - len(prompt) :] = prompt
            attention_mask[row, width - len(prompt) :] = 1
        # fixed length: EOS is suppressed until max_new_tokens, and no stop string is watched
        length_kwargs = {"min_new_tokens": settings.max_new_tokens} if settings.fixed_length else {}
        cached = 0
        if prefix is not None:  # the batch continues a copy of the prefix's cache, one row per prompt
            cached = len(prefix.ids)
            cache = copy.deepcopy(prefix.cache)
            cache.batch_repeat_interleave(len(batch))
            input_ids = torch.cat([torch.as_tensor([prefix.ids] * len(batch), dtype=torch.long), input_ids], dim=1)
            attention_mask = torch.cat([torch.ones((len(batch), cached), dtype=torch.long), attention_mask], dim=1)
            length_kwargs["cache"] = cache
        with torch.no_grad():
            output = model.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention_mask.to(device),
                do_sample=False,
                num_beams=1,
                max_new_tokens=settings.max_new_tokens,
                pad_token_id=padding,
                eos_token_id=eos_id,
                stopping_criteria=stopping,
                **length_kwargs,
            )
        new_ids = output[:, cached + width :].cpu()
        counts = _new_token_counts(new_ids, eos_ids, tokenizer, settings.fixed_length)
        for row, index in enumerate(batch):
            # after its stop a row holds padding: decode only what it generated
            text = tokenizer.decode(new_ids[row, : counts[row]], skip_special_tokens=True)
            results[index] = Generation(_cut(text), len(prompts[index]), counts[row], cached_tokens=cached)
    return results


def generate_answers(
    model,
    tokenizer,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    batch_size: int,
    max_batch_tokens: int | None = None,
) -> list[str]:
    """Greedy answers (cut at the first newline, stripped) to `prompts`, in their order."""
    settings = GenerationSettings(max_new_tokens, batch_size, max_batch_tokens)
    return [generation.text for generation in generate(model, tokenizer, prompts, settings)]
