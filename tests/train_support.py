"""Pretraining examples for the training tests: synthetic token streams laid out by the pipeline's own builder.

The pipeline packs SlimPajama-like text into sequences and lays them out with `ga.data.pretrain.build_examples`; the
tests replace the text by a small Markov-ish token process with learnable structure and keep everything else: the
same builder, and the same conversion to tensors as the pipeline's loader.
"""
from __future__ import annotations

import numpy as np
import torch

from ga.data.pretrain import build_examples, examples_to_tensors
from ga.data.config import WindowLayout
from ga.train.objective import MODEL_INPUT_KEYS

PAD_ID = 0
"""Token id of the padding after a short reconstruction span (masked out and unlabelled)."""
NOISE_RATE = 0.1
"""Fraction of a sequence's tokens replaced by uniformly random ones."""


def motif_sequences(n_sequences: int, seq_len: int, motif_len: int, vocab: int, seed: int) -> np.ndarray:
    """(n_sequences, seq_len) int32 token ids. Each sequence repeats its own random motif with noise, so its earlier
    windows predict its later ones (what the generator learns to exploit)."""
    generator = torch.Generator().manual_seed(seed)
    sequences = []
    for _ in range(n_sequences):
        motif = torch.randint(0, vocab, (motif_len,), generator=generator)
        tokens = motif.repeat(seq_len // motif_len + 1)[:seq_len].clone()
        noise = torch.rand(seq_len, generator=generator) < NOISE_RATE
        tokens[noise] = torch.randint(0, vocab, (int(noise.sum()),), generator=generator)
        sequences.append(tokens)
    return torch.stack(sequences).numpy().astype(np.int32)


def synthetic_pretrain_set(n_examples: int, n_completion: int, window: int, vocab: int, seed: int,
                           reconstruction_windows: int | None = None, split: str = "train") -> list[dict]:
    """Examples as the training loop takes them (dicts of (S, L) / (S,) tensors), built by the pipeline.

    reconstruction_windows defaults to n_completion (the pipeline's default layout).
    """
    layout = WindowLayout(window=window, completion_windows=n_completion,
                          reconstruction_windows=n_completion if reconstruction_windows is None
                          else reconstruction_windows)
    sequences = motif_sequences(n_examples, layout.seq_len, max(2, window // 2), vocab, seed)
    tensors = examples_to_tensors(build_examples(sequences, 0, layout, seed, split, PAD_ID), layout)
    return [{key: tensors[key][i] for key in MODEL_INPUT_KEYS} for i in range(n_examples)]
