"""Pretraining examples (docs/method.md#pretraining): tokenize documents, pack them into sequences, lay out windows; and the loader.

Stored layout (one Parquet row per example; S = n + m windows of L tokens; n = completion_windows,
m = reconstruction_windows; the manifest's "layout" records L, n, m):

    example_id      Int64            0, 1, 2, ... within the split (the order of the packed token stream)
    input_ids       List[Int32]      S*L ids, window-major: window w is input_ids[w*L:(w+1)*L]
    labels          List[Int32]      S*L; IGNORE_INDEX (-100) = no loss (padding); otherwise equal to input_ids
    attention_mask  List[Int8]       S*L; 1 = real token, 0 = padding (only at the end of reconstruction windows)
    adapter_prefix  List[Int32]      S; window w's adapter is built from windows 0..adapter_prefix[w]-1
    span_start      List[Int32]      m; start (token offset into the sequence) of reconstruction window j's span
    span_length     List[Int32]      m; its length

Windows 0..n-1 ("completion") are the packed sequence's own windows, adapter_prefix = w, labels = tokens.
Window n+j ("reconstruction") copies tokens [start, start+length) of the sequence, with start uniform in
[0, (j+1)L) and length = min(L, (j+1)L - start) (a span inside the first j+1 windows), padded to L;
adapter_prefix = j+1. Spans come from a counter-based RNG keyed by (seed, split, example_id, j), so every example
is reproducible on its own and the output is byte-identical for the same config and seed.

Documents are framed by BOS/EOS, concatenated in the stored document order and cut into sequences of n*L tokens;
the tail that does not fill a sequence is dropped (its size is in the manifest). Validation documents are chosen
by a seeded hash of doc_id, so no validation document's tokens appear in training.

Loader: `load_examples(path)` -> dict of tensors; `iter_batches(path, batch_size, ...)` -> dicts with
input_ids/attention_mask/labels (B, S, L) and adapter_prefix (B, S), all torch.long, plus example_id (B,).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

import numpy as np
import polars as pl
import pyarrow.parquet as pq
from tqdm import tqdm

from ga.data import contracts
from ga.data.contracts import RAW_DOCUMENTS, WindowLayout, validate
from ga.labels import IGNORE_INDEX
from ga.data.parquet import shard_name, write_parquet
from ga.io import atomic_dir, sha256_file, sha256_json, write_json
from ga.data.config import PretrainDataConfig
from ga.data.sources import hash_order_key
from ga.data.tokenize import DocumentTokenizer

SPLITS = ("train", "val")
MANIFEST = "manifest.json"
_HASH_SPACE = 1 << 64
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a fast, well-mixed counter-based hash (uint64 -> uint64), vectorised."""
    with np.errstate(over="ignore"):
        z = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return z ^ (z >> np.uint64(31))


def span_starts(seed: int, split: str, example_ids: np.ndarray, layout: WindowLayout) -> np.ndarray:
    """(N, m) span starts; example e, reconstruction window j: uniform in [0, (j+1)L) from hash(seed, split, e, j)."""
    m, L = layout.reconstruction_windows, layout.window
    key = _splitmix64(np.array([seed & 0xFFFFFFFF | (SPLITS.index(split) << 32)], dtype=np.uint64))
    counters = (example_ids.astype(np.uint64)[:, None] * np.uint64(max(m, 1)) + np.arange(m, dtype=np.uint64)[None, :])
    draws = _splitmix64(counters ^ key)
    highs = (np.arange(m, dtype=np.uint64) + np.uint64(1)) * np.uint64(L)
    return (draws % highs[None, :]).astype(np.int64)


def build_examples(sequences: np.ndarray, first_example_id: int, layout: WindowLayout, seed: int, split: str,
                   pad_id: int) -> pl.DataFrame:
    """(N, n*L) packed sequences -> N examples in the stored layout (see the module docstring)."""
    N, (n, m, L) = len(sequences), (layout.completion_windows, layout.reconstruction_windows, layout.window)
    example_ids = np.arange(first_example_id, first_example_id + N, dtype=np.int64)
    starts = span_starts(seed, split, example_ids, layout)                                   # (N, m)
    ends = np.minimum(starts + L, ((np.arange(m) + 1) * L)[None, :])                          # (N, m)
    positions = starts[:, :, None] + np.arange(L)[None, None, :]                              # (N, m, L)
    valid = positions < ends[:, :, None]
    copied = np.take_along_axis(sequences[:, None, :], np.minimum(positions, n * L - 1), axis=2)
    recon_ids = np.where(valid, copied, pad_id)
    input_ids = np.concatenate([sequences.reshape(N, n * L), recon_ids.reshape(N, m * L)], axis=1).astype(np.int32)
    mask = np.concatenate([np.ones((N, n * L), dtype=np.int8), valid.reshape(N, m * L).astype(np.int8)], axis=1)
    labels = np.where(mask == 1, input_ids, IGNORE_INDEX).astype(np.int32)
    prefix = np.broadcast_to(np.asarray(layout.adapter_prefix, dtype=np.int32), (N, n + m))

    def list_column(name, array, dtype):
        return pl.Series(name, np.ascontiguousarray(array)).cast(pl.List(dtype))

    return pl.DataFrame([
        pl.Series("example_id", example_ids),
        list_column("input_ids", input_ids, pl.Int32),
        list_column("labels", labels, pl.Int32),
        list_column("attention_mask", mask, pl.Int8),
        list_column("adapter_prefix", prefix, pl.Int32),
        list_column("span_start", starts.astype(np.int32).reshape(N, m), pl.Int32),
        list_column("span_length", (ends - starts).astype(np.int32).reshape(N, m), pl.Int32),
    ])


def examples_to_tensors(frame: pl.DataFrame, layout: WindowLayout) -> dict:
    """Examples in the stored layout (a `build_examples` frame) as the loader's tensors: input_ids, attention_mask,
    labels (N, S, L), adapter_prefix (N, S), example_id (N,), all torch.long, as `load_examples` returns a split."""
    return _to_tensors(frame.to_arrow(), layout.num_windows, layout.window)


class SplitWriter:
    """Packs one split's token stream into examples and writes shards (streaming: holds < one shard)."""

    def __init__(self, split: str, out_dir: Path, settings: PretrainDataConfig, tokenizer: DocumentTokenizer):
        self.split, self.out_dir, self.settings, self.tokenizer = split, out_dir, settings, tokenizer
        self.layout = settings.layout
        self.schema = contracts.examples_schema(self.layout, tokenizer.vocab_size)
        self.carry = np.zeros(0, dtype=np.int32)
        self.pending: list[pl.DataFrame] = []
        self.pending_rows = 0
        self.examples = 0
        self.shards: list[dict] = []
        self.per_source: dict[str, list[int]] = {}

    def add(self, tokenized: pl.DataFrame) -> None:
        if tokenized.height == 0:
            return
        for row in tokenized.group_by("source").agg(pl.len(), pl.col("input_ids").list.len().sum()).iter_rows():
            stats = self.per_source.setdefault(row[0], [0, 0])
            stats[0] += row[1]
            stats[1] += row[2]
        stream = np.concatenate([self.carry, tokenized["input_ids"].explode().to_numpy().astype(np.int32)])
        seq_len = self.layout.seq_len
        count = len(stream) // seq_len
        self.carry = stream[count * seq_len:].copy()
        if count:
            frame = build_examples(stream[:count * seq_len].reshape(count, seq_len), self.examples, self.layout,
                                   self.settings.seed, self.split, self.tokenizer.pad_id)
            self.examples += count
            self.pending.append(frame)
            self.pending_rows += count
            while self.pending_rows >= self.settings.examples_per_shard:
                self._flush(self.settings.examples_per_shard)

    def _flush(self, rows: int) -> None:
        frame = pl.concat(self.pending)
        shard, rest = frame.head(rows), frame.slice(rows)
        name = shard_name(len(self.shards))
        validate(self.schema, shard, f"{self.split}/{name}", 0)
        write_parquet(shard, self.out_dir / name)
        self.shards.append({"file": name, "rows": shard.height, "sha256": sha256_file(self.out_dir / name)})
        self.pending, self.pending_rows = ([rest] if rest.height else []), rest.height

    def finish(self, documents_manifest: dict) -> dict:
        if self.pending_rows:
            self._flush(self.pending_rows)
        if not self.shards:
            raise contracts.DataError(
                self.split, None, None,
                f"not enough tokens for one sequence of {self.layout.seq_len} tokens; raise pretrain_data.token_budget "
                f"or lower val_fraction")
        sources = pl.DataFrame([{"source": s, "documents": d, "tokens": t} for s, (d, t) in sorted(self.per_source.items())],
                               schema={"source": pl.Utf8, "documents": pl.Int64, "tokens": pl.Int64})
        validate(contracts.MANIFEST_SOURCES, sources, f"{self.split}/{MANIFEST}:sources")
        validate(contracts.MANIFEST_SHARDS, pl.DataFrame(self.shards), f"{self.split}/{MANIFEST}:shards")
        manifest = {
            "kind": "pretrain_examples",
            "split": self.split,
            "examples": self.examples,
            "layout": {"window": self.layout.window, "completion_windows": self.layout.completion_windows,
                       "reconstruction_windows": self.layout.reconstruction_windows, "seq_len": self.layout.seq_len,
                       "num_windows": self.layout.num_windows, "adapter_prefix": self.layout.adapter_prefix},
            "params": self.settings.examples_depends_on(),
            "tokenizer": self.tokenizer.describe(),
            "documents": int(sources["documents"].sum()),
            "tokens": int(sources["tokens"].sum()),
            "dropped_tail_tokens": int(len(self.carry)),
            "sources": sources.to_dicts(),
            "shards": self.shards,
            "content_sha256": sha256_json([s["sha256"] for s in self.shards]),
            "documents_content_sha256": documents_manifest["content_sha256"],
        }
        write_json(manifest, self.out_dir / MANIFEST)
        return manifest


def is_validation(seed: int, doc_id: str, val_fraction: float) -> bool:
    return hash_order_key(seed, doc_id, "validation") < val_fraction * _HASH_SPACE


def prepare_examples(settings: PretrainDataConfig, documents_dir: str | os.PathLike, tokenizer_dir: str | os.PathLike,
                     train_dir: str | os.PathLike, val_dir: str | os.PathLike) -> dict[str, dict]:
    """The examples stage: documents dir -> train/ and val/ shard dirs with manifests. Streams by chunks."""
    documents_dir = Path(documents_dir)
    documents_manifest = json.loads((documents_dir / MANIFEST).read_text())
    tokenizer = DocumentTokenizer.load(tokenizer_dir, settings.bos_token, settings.eos_token)
    token_schema = contracts.tokenized_documents_schema(tokenizer.vocab_size, tokenizer.bos_id, tokenizer.eos_id)
    with atomic_dir(train_dir) as train_tmp, atomic_dir(val_dir) as val_tmp:
        writers = {"train": SplitWriter("train", train_tmp, settings, tokenizer),
                   "val": SplitWriter("val", val_tmp, settings, tokenizer)}
        progress = tqdm(total=documents_manifest["documents"], unit="doc", desc="tokenize+window")
        for shard in documents_manifest["shards"]:
            path = documents_dir / shard["file"]
            offset = 0
            for batch in pq.ParquetFile(path).iter_batches(batch_size=settings.tokenize_batch_documents):
                docs = validate(RAW_DOCUMENTS, pl.from_arrow(batch), str(path), offset)
                tokenized = validate(token_schema, tokenizer.tokenize_frame(docs), str(path), offset)
                in_val = pl.Series([is_validation(settings.seed, d, settings.val_fraction) for d in docs["doc_id"]])
                writers["val"].add(tokenized.filter(in_val))
                writers["train"].add(tokenized.filter(~in_val))
                offset += batch.num_rows
                progress.update(batch.num_rows)
        progress.close()
        return {split: writer.finish(documents_manifest) for split, writer in writers.items()}


# ---------------------------------------------------------------- loader
def read_manifest(split_dir: str | os.PathLike) -> dict:
    return json.loads((Path(split_dir) / MANIFEST).read_text())


def _shard_paths(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return [path / s["file"] for s in read_manifest(path)["shards"]]


def _layout_of(path: Path) -> tuple[int, int]:
    manifest_dir = path if path.is_dir() else path.parent
    layout = read_manifest(manifest_dir)["layout"]
    return layout["num_windows"], layout["window"]


def _to_tensors(table, num_windows: int, window: int) -> dict:
    import torch

    def grid(column, width):
        values = table.column(column).combine_chunks().flatten().to_numpy(zero_copy_only=False)
        return torch.from_numpy(values.astype(np.int64).reshape(table.num_rows, *width))

    return {
        "input_ids": grid("input_ids", (num_windows, window)),
        "attention_mask": grid("attention_mask", (num_windows, window)),
        "labels": grid("labels", (num_windows, window)),
        "adapter_prefix": grid("adapter_prefix", (num_windows,)),
        "example_id": torch.from_numpy(table.column("example_id").to_numpy().astype(np.int64)),
    }


def load_examples(path: str | os.PathLike) -> dict:
    """All examples of a split dir (or one shard of it) as tensors (see `iter_batches`)."""
    import pyarrow as pa

    path = Path(path)
    num_windows, window = _layout_of(path)
    table = pa.concat_tables([pq.read_table(p) for p in _shard_paths(path)])
    return _to_tensors(table, num_windows, window)


def iter_batches(path: str | os.PathLike, batch_size: int, shuffle_seed: int | None = None,
                 drop_last: bool = False) -> Iterator[dict]:
    """Batches of a split dir, reading one shard at a time.

    Yields {"input_ids", "attention_mask", "labels": LongTensor (B, S, L), "adapter_prefix": LongTensor (B, S),
    "example_id": LongTensor (B,)}. With `shuffle_seed`, shard order and rows within each shard are permuted by
    a generator seeded with it (the same seed gives the same order); otherwise the stored order is kept.
    """
    import pyarrow as pa

    path = Path(path)
    num_windows, window = _layout_of(path)
    rng = np.random.default_rng(shuffle_seed) if shuffle_seed is not None else None
    shards = _shard_paths(path)
    if rng is not None:
        shards = [shards[i] for i in rng.permutation(len(shards))]
    carry = None
    for shard in shards:
        table = pq.read_table(shard)
        if rng is not None:
            table = table.take(pa.array(rng.permutation(table.num_rows)))
        if carry is not None:
            table = pa.concat_tables([carry, table])
        full = table.num_rows // batch_size * batch_size
        for start in range(0, full, batch_size):
            yield _to_tensors(table.slice(start, batch_size), num_windows, window)
        carry = table.slice(full) if full < table.num_rows else None
    if carry is not None and carry.num_rows and not drop_last:
        yield _to_tensors(carry, num_windows, window)
