"""Pretraining examples for the training tests and benchmarks: synthetic token streams laid out by the pipeline's
own builder.

The pipeline packs SlimPajama-like text into sequences and lays them out with `ga.data.pretrain.build_examples`; the
tests replace the text by a small Markov-ish token process with learnable structure and keep everything else: the
same builder, and the same conversion to tensors as the pipeline's loader. `write_token_split` goes one step further:
synthetic token documents through the pipeline's own split writer, into a split folder that `open_split` reads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import torch

from ga.data.config import PretrainDataConfig, WindowLayout
from ga.data.pretrain import build_examples, examples_to_tensors, write_examples
from ga.data.tokenize import DocumentTokenizer
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


def synthetic_pretrain_set(
    n_examples: int,
    n_completion: int,
    window: int,
    vocab: int,
    seed: int,
    reconstruction_windows: int | None = None,
    split: str = "train",
) -> list[dict]:
    """Examples as the training loop takes them (dicts of (S, L) / (S,) tensors), built by the pipeline.

    reconstruction_windows defaults to n_completion (the pipeline's default layout).
    """
    layout = WindowLayout(
        window=window,
        completion_windows=n_completion,
        reconstruction_windows=n_completion if reconstruction_windows is None else reconstruction_windows,
    )
    sequences = motif_sequences(n_examples, layout.seq_len, max(2, window // 2), vocab, seed)
    tensors = examples_to_tensors(build_examples(sequences, 0, layout, seed, split, PAD_ID), layout)
    return [{key: tensors[key][i] for key in MODEL_INPUT_KEYS} for i in range(n_examples)]


SYNTHETIC_SOURCE = "synthetic"
DOCUMENTS_PER_BATCH = 256
"""Token documents handed to the split writer at a time (it streams; the size never changes the output)."""


def token_documents(n_tokens: int, vocab: int, document_tokens: tuple[int, int], seed: int, bos_id: int, eos_id: int):
    """Batches of tokenized documents (doc_id, source, input_ids framed by BOS/EOS) with at least n_tokens tokens in
    all: random ids in [0, vocab), lengths uniform in `document_tokens`."""
    rng = np.random.default_rng(seed)
    total, index = 0, 0
    while total < n_tokens:
        lengths = rng.integers(*document_tokens, size=DOCUMENTS_PER_BATCH)
        reached = total + np.cumsum(lengths + 2) >= n_tokens  # 2: BOS and EOS
        if reached.any():  # stop at the document that reaches n_tokens
            lengths = lengths[: int(reached.argmax()) + 1]
        ids = [[bos_id, *rng.integers(0, vocab, size=length).tolist(), eos_id] for length in lengths]
        yield pl.DataFrame(
            {
                "doc_id": [f"{SYNTHETIC_SOURCE}/{index + i:08d}" for i in range(len(ids))],
                "source": SYNTHETIC_SOURCE,
                "input_ids": ids,
            },
            schema={"doc_id": pl.Utf8, "source": pl.Utf8, "input_ids": pl.List(pl.Int32)},
        )
        total += int(lengths.sum()) + 2 * len(lengths)
        index += len(ids)


def write_token_split(
    out_dir: Path,
    n_examples: int,
    layout: WindowLayout,
    tokenizer_dir: Path,
    seed: int,
    vocab: int | None = None,
    document_tokens: tuple[int, int] = (50, 2000),
    examples_per_shard: int = 1024,
    split: str = "train",
) -> dict:
    """A split folder of at least n_examples examples (the last document may reach a few sequences further) from
    synthetic token documents, written by the pipeline's
    split writer; ids below `vocab` (default: the tokenizer's). Returns its manifest."""
    tokenizer = DocumentTokenizer.load(tokenizer_dir)
    settings = PretrainDataConfig.from_dict(
        {
            "window": layout.window,
            "completion_windows": layout.completion_windows,
            "reconstruction_windows": layout.reconstruction_windows,
            "examples_per_shard": examples_per_shard,
            "seed": seed,
        }
    )
    documents = token_documents(
        n_examples * layout.seq_len,
        vocab or tokenizer.vocab_size,
        document_tokens,
        seed,
        tokenizer.bos_id,
        tokenizer.eos_id,
    )
    return write_examples(split, documents, out_dir, settings, tokenizer, {"content_sha256": SYNTHETIC_SOURCE})
