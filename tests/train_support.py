"""Pretraining examples in the real layout (SPEC §2.1) built from token streams, for the training tests.

The pipeline builds these from SlimPajama-like text (ga/data); the tests only need the layout: n completion windows
(window i adapted by windows 0..i-1) then n reconstruction windows (window n+j: a span copied from windows 0..j,
adapted by them), with a seeded per-example RNG.
"""
from __future__ import annotations

import torch

IGNORE = -100


def pretrain_example(tokens: torch.Tensor, n_completion: int, window: int, generator: torch.Generator) -> dict:
    """tokens: (n_completion * window,) token ids of one sequence -> one example of (2n, window) tensors."""
    n, length = n_completion, window
    input_ids = torch.zeros(2 * n, length, dtype=torch.long)
    attention_mask = torch.zeros(2 * n, length, dtype=torch.long)
    input_ids[:n] = tokens.view(n, length)
    attention_mask[:n] = 1
    for j in range(n):
        source_end = (j + 1) * length
        start = int(torch.randint(0, source_end - 1, (1,), generator=generator))
        span_len = int(torch.randint(2, length + 1, (1,), generator=generator))
        span = tokens[start: min(start + span_len, source_end)]
        input_ids[n + j, : len(span)] = span
        attention_mask[n + j, : len(span)] = 1
    labels = torch.where(attention_mask.bool(), input_ids, torch.full_like(input_ids, IGNORE))
    adapter_prefix = torch.cat([torch.arange(n), torch.arange(1, n + 1)])
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels, "adapter_prefix": adapter_prefix}


def synthetic_pretrain_set(n_examples: int, n_completion: int, window: int, vocab: int, seed: int) -> list[dict]:
    """Sequences of a small Markov-ish token process (learnable structure), laid out as pretraining examples."""
    generator = torch.Generator().manual_seed(seed)
    examples = []
    for _ in range(n_examples):
        total = n_completion * window
        # each sequence repeats a short random motif with noise: its own context predicts its later windows
        motif = torch.randint(0, vocab, (max(2, window // 2),), generator=generator)
        tokens = motif.repeat(total // len(motif) + 1)[:total].clone()
        noise = torch.rand(total, generator=generator) < 0.1
        tokens[noise] = torch.randint(0, vocab, (int(noise.sum()),), generator=generator)
        examples.append(pretrain_example(tokens, n_completion, window, generator))
    return examples
