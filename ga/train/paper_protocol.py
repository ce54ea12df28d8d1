"""The paper's Table 2 validation protocol, reported beside this project's own (docs/method.md#pretraining-objective).

For each held-out document, from its start, framed by BOS/EOS exactly as the data stage frames it
(`DocumentTokenizer.tokenize_frame`): the context is its first window of L tokens, the completion target the next L
tokens, the reconstruction target the first window again. A target's perplexity is exp of the mean, over documents, of
each document's mean token NLL. Documents shorter than two windows (2L tokens, BOS/EOS included) are skipped and
counted, so every scored target is a full window. Held-out documents are those of `ga.data.pretrain.held_out_document`:
the documents whose packed sequences form the `val` split, none of which appear in training.

Scoring uses the training forward on (B, 4, L) windows, one row per document:

    window  holds          adapter prefix  scores
    0       first window   0               none_reconstruction (the base model alone; window 0 is also the context)
    1       next window    1               completion          (adapted by window 0)
    2       first window   1               reconstruction      (adapted by window 0)
    3       next window    0               none_completion     (the base model alone)

Labels do not change the state a window contributes, so window 0 is both the context and a scored target. As in
training, position t of a window predicts token t+1 of the same window: each target scores its last L-1 tokens.
tests/test_paper_protocol.py checks that this equals encoding the first window (`GenerativeAdapter.encode`) and scoring
each target with the adapted base model (`GenerativeAdapter.adapted`).

The stage calls `paper_validation(engine, documents_dir, base_model_dir, config, dist_info)` after training.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch

from ga.data.contracts import RAW_DOCUMENTS, validate
from ga.data.examples import MANIFEST
from ga.data.parquet import open_parquet
from ga.data.pretrain import held_out_document
from ga.data.tokenize import DocumentTokenizer
from ga.io import read_json
from ga.train.distributed import Dist
from ga.train.loop import MAX_EXP_ARG

DOCUMENT_WINDOWS = 2
"""Windows of a document the protocol reads: the first (context, reconstruction target) and the next (completion)."""
WINDOW_SOURCES = (0, 1, 0, 1)
"""Which of a document's windows (0: first, 1: next) each window of the scoring layout holds."""
WINDOW_PREFIXES = (0, 1, 1, 0)
"""Adapter prefix of each window of the scoring layout (1: adapted by window 0, the first window)."""
TARGETS = {"none_reconstruction": 0, "completion": 1, "reconstruction": 2, "none_completion": 3}
"""Metric name (after `paper_`) -> window of the scoring layout it scores."""
METRIC_PREFIX = "paper_"
READ_BATCH_DOCUMENTS = 1024
"""Documents read and tokenized at a time (bounds memory; never changes the result)."""

PROTOCOLS = {
    "own_*, none_*, other_*": "this project's own protocol: held-out packed sequences in the training layout (n completion + m "
    "reconstruction windows); parts first_window (window 0, no adapter), completion (the adapted completion "
    "windows 1..n-1) and reconstruction; adapter from the sequence's own earlier windows (own), none, or another "
    "held-out sequence (other); exp of the mean NLL per labelled token (docs/method.md#pretraining-objective)",
    "paper_*": "the paper's Table 2 protocol: per held-out document from its start, context = its first window, completion "
    "target = the next window, reconstruction target = the first window again; exp of the mean over documents of "
    "each document's mean token NLL; documents shorter than two windows skipped (paper_documents_too_short); "
    "paper_none_*: the same targets without an adapter",
}
"""What each family of validation metrics measures (written beside them in validation.json)."""


@dataclass
class HeldOutDocuments:
    """The first two windows of the held-out documents the protocol scores, in stored order."""

    windows: torch.Tensor
    """(D, 2, L) token ids (int32, as the data stage stores them): each document's first window and the next one."""
    doc_ids: list[str]
    too_short: int
    """Held-out documents read and skipped for having fewer than 2L tokens."""
    limit: int
    """The cap on scored documents it was read with (0: none)."""

    def __len__(self) -> int:
        return len(self.doc_ids)


def held_out_documents(
    documents_dir: str | os.PathLike,
    tokenizer: DocumentTokenizer,
    window: int,
    seed: int,
    val_fraction: float,
    limit: int = 0,
    batch_documents: int = READ_BATCH_DOCUMENTS,
) -> HeldOutDocuments:
    """The held-out documents of a `pretrain_documents` folder (Parquet shards + manifest.json) with at least two
    windows of tokens, framed by `tokenizer` as the data stage frames them; the first `limit` of them (0: all).

    Reads `batch_documents` documents at a time and stops once `limit` documents are found.
    """
    documents_dir = Path(documents_dir)
    manifest = read_json(documents_dir / MANIFEST)
    span = DOCUMENT_WINDOWS * window
    kept: list[np.ndarray] = []
    doc_ids: list[str] = []
    too_short = 0
    for shard in manifest["shards"]:
        path = documents_dir / shard["file"]
        offset = 0
        for batch in open_parquet(path).iter_batches(batch_size=batch_documents):
            documents = validate(RAW_DOCUMENTS, pl.from_arrow(batch), str(path), offset)
            offset += batch.num_rows
            held_out = pl.Series([held_out_document(seed, doc_id, val_fraction) for doc_id in documents["doc_id"]])
            tokenized = tokenizer.tokenize_frame(documents.filter(held_out))
            long_enough = tokenized["input_ids"].list.len() >= span
            if limit:
                # stop reading at the document that reaches the cap, so the skipped count covers what was read
                positions = np.flatnonzero(long_enough.to_numpy())
                needed = limit - len(doc_ids)
                if len(positions) >= needed:
                    read = int(positions[needed - 1]) + 1
                    tokenized, long_enough = tokenized.head(read), long_enough.head(read)
            scored = tokenized.filter(long_enough)
            too_short += tokenized.height - scored.height
            if scored.height:
                kept.append(
                    scored["input_ids"]
                    .list.head(span)
                    .explode()
                    .to_numpy()
                    .astype(np.int32)
                    .reshape(scored.height, DOCUMENT_WINDOWS, window)
                )
                doc_ids.extend(scored["doc_id"].to_list())
            if limit and len(doc_ids) >= limit:
                return HeldOutDocuments(torch.from_numpy(np.concatenate(kept)), doc_ids, too_short, limit)
    windows = np.concatenate(kept) if kept else np.zeros((0, DOCUMENT_WINDOWS, window), dtype=np.int32)
    return HeldOutDocuments(torch.from_numpy(windows), doc_ids, too_short, limit)


def scoring_batch(windows: torch.Tensor) -> dict[str, torch.Tensor]:
    """(B, 2, L) document windows -> the training forward's inputs in the scoring layout (module docstring)."""
    input_ids = windows[:, list(WINDOW_SOURCES)].long()
    prefix = torch.tensor(WINDOW_PREFIXES, dtype=torch.long).expand(windows.shape[0], -1)
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "labels": input_ids.clone(),
        "adapter_prefix": prefix.clone(),
    }


@torch.no_grad()
def document_nll(model, windows: torch.Tensor, device: torch.device | None = None) -> dict[str, torch.Tensor]:
    """Each document's mean token NLL of every target, float64 (B,) each, from one training forward.

    model: a GenerativeAdapter, or a DeepSpeed engine wrapping one (needed under ZeRO-3, whose module holds only
    parameter partitions).
    """
    batch = scoring_batch(windows)
    if device is not None:
        batch = {key: value.to(device) for key, value in batch.items()}
    out = model(**batch)
    window_losses = out.window_losses.detach().to(torch.float64).cpu()
    return {name: window_losses[:, index] for name, index in TARGETS.items()}


def _device_of(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def paper_protocol(model, documents: HeldOutDocuments, batch_size: int, dist_info: Dist | None = None) -> dict:
    """The protocol's metrics over `documents`: `paper_<target>_loss` / `_ppl` for every target (none when there is
    no document to score) and the document counts `paper_documents`, `paper_documents_too_short`,
    `paper_documents_limit`.

    With `dist_info`, process r scores documents r, r + world_size, ... and the sums are combined; every process
    runs the same number of forward passes (ZeRO-3 gathers parameters collectively). Call it on every process.
    """
    rank, world_size = (dist_info.rank, dist_info.world_size) if dist_info is not None else (0, 1)
    device = dist_info.device if dist_info is not None else _device_of(model)
    mine = list(range(rank, len(documents), world_size))
    n_batches = math.ceil(math.ceil(len(documents) / world_size) / batch_size)
    # per-target NLL sums, then the number of documents scored
    sums = torch.zeros(len(TARGETS) + 1, dtype=torch.float64)
    was_training = model.training
    model.eval()
    try:
        for b in range(n_batches):
            indices = mine[b * batch_size : (b + 1) * batch_size]
            scored = bool(indices)
            indices = indices or [0]  # a process with no documents left still joins the collective forward passes
            nll = document_nll(model, documents.windows[indices], device)
            if scored:
                sums[:-1] += torch.stack([nll[name].sum() for name in TARGETS])
                sums[-1] += len(indices)
    finally:
        if was_training:
            model.train()
    if dist_info is not None:
        sums = dist_info.sum(sums)
    n_scored = int(sums[-1])
    metrics: dict = {}
    if n_scored:
        for index, name in enumerate(TARGETS):
            loss = float(sums[index] / n_scored)
            metrics[f"{METRIC_PREFIX}{name}_loss"] = loss
            metrics[f"{METRIC_PREFIX}{name}_ppl"] = math.exp(min(loss, MAX_EXP_ARG))
    metrics.update(
        {
            f"{METRIC_PREFIX}documents": n_scored,
            f"{METRIC_PREFIX}documents_too_short": documents.too_short,
            f"{METRIC_PREFIX}documents_limit": documents.limit,
        }
    )
    return metrics


def paper_validation(
    model, documents_dir: str | os.PathLike, base_model_dir: str | os.PathLike, config, dist_info: Dist | None = None
) -> dict:
    """The paper's protocol for a pretraining run: its metrics plus `protocols` (what each metric family measures).

    model: the trained GenerativeAdapter or its DeepSpeed engine (the engine under ZeRO-3).
    documents_dir: the `pretrain_documents` stage's folder; base_model_dir: the base model folder (its tokenizer).
    config: the RunConfig (seed, pretrain_data framing / window / val_fraction, pretrain.paper_val_documents and
    val_batch_size). A collective call under `dist_info`: every process reads the documents and scores its share.
    """
    data = config.pretrain_data
    tokenizer = DocumentTokenizer.load(base_model_dir, data.bos_token, data.eos_token)
    documents = held_out_documents(
        documents_dir,
        tokenizer,
        data.window,
        config.seed,
        data.val_fraction,
        config.pretrain.paper_val_documents,
        data.tokenize_batch_documents,
    )
    return {**paper_protocol(model, documents, config.pretrain.val_batch_size, dist_info), "protocols": PROTOCOLS}
