"""Pretraining examples (docs/method.md#pretraining): tokenize documents, pack them into sequences, lay out windows.
Reading them back is ga/data/examples.py.

Stored layout (one Parquet row per example; S = n + m windows of L tokens; n = completion_windows,
m = reconstruction_windows; the manifest's "layout" records L, n, m):

    example_id      Int64            0, 1, 2, ... within the split (the order of the packed token stream)
    input_ids       List[Int32]      S*L ids, window-major: window w is input_ids[w*L:(w+1)*L]
    labels          List[Int32]      S*L; input_ids where attention_mask is 1, IGNORE_INDEX (-100, no loss) elsewhere
    attention_mask  List[Int8]       S*L; 1 = real token, 0 = padding (only at the end of reconstruction windows)
    adapter_prefix  List[Int32]      S; window w's adapter is built from windows 0..adapter_prefix[w]-1
    span_start      List[Int32]      m; start (token offset into the sequence) of reconstruction window j's span
    span_length     List[Int32]      m; its length
    doc_ids         List[Utf8]       ids of the documents whose tokens the sequence holds, in stream order

Windows 0..n-1 ("completion") are the packed sequence's own windows, adapter_prefix = w, labels = tokens.
Window n+j ("reconstruction") copies tokens [start, start+length) of the sequence, with start uniform in
[0, (j+1)L) and length = min(L, (j+1)L - start) (a span inside the first j+1 windows), padded to L;
adapter_prefix = j+1. Spans come from a counter-based RNG keyed by (seed, split, example_id, j), so every example
is reproducible on its own and the output is byte-identical for the same config and seed.

Documents are framed by BOS/EOS, concatenated in the stored document order and cut into sequences of n*L tokens;
the tail that does not fill a sequence is dropped (its size is in the manifest). Validation documents are chosen
by a seeded hash of doc_id, so no validation document's tokens appear in training. A long document continues over
consecutive examples; `doc_ids` says which examples share one (the other-context control needs a donor that does
not, see `PretrainExamples.donor_for`).

Beside each Parquet shard the stage writes an uncompressed Arrow IPC copy (`shard-NNNNN.arrow`: example_id,
input_ids as FixedSizeList<Int32>[S*L], attention_mask as FixedSizeList<Int8>[S*L], adapter_prefix as
FixedSizeList<Int32>[S], doc_ids; no labels, which follow from input_ids and attention_mask). Parquet is the
compressed, contract-checked record; the Arrow copy is what training reads, one example at a time, because a
compressed Parquet row cannot be read without decompressing its whole row group (see `ArrowShard`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
from tqdm import tqdm

from ga.data import contracts
from ga.data.config import PretrainDataConfig
from ga.data.contracts import RAW_DOCUMENTS, WindowLayout, validate
from ga.data.entities import split_key
from ga.data.examples import ARROW_SUFFIX, DOCUMENT_IDS, MANIFEST, _to_tensors
from ga.data.parquet import open_parquet, shard_name, write_parquet
from ga.data.sources import hash_order_key
from ga.data.tokenize import DocumentTokenizer
from ga.io import atomic_dir, read_json, sha256_file, sha256_json, write_json
from ga.labels import IGNORE_INDEX

SPLITS = ("train", "val")
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
    counters = example_ids.astype(np.uint64)[:, None] * np.uint64(max(m, 1)) + np.arange(m, dtype=np.uint64)[None, :]
    draws = _splitmix64(counters ^ key)
    highs = (np.arange(m, dtype=np.uint64) + np.uint64(1)) * np.uint64(L)
    return (draws % highs[None, :]).astype(np.int64)


def build_examples(
    sequences: np.ndarray,
    first_example_id: int,
    layout: WindowLayout,
    seed: int,
    split: str,
    pad_id: int,
    doc_ids: list[list[str]] | None = None,
) -> pl.DataFrame:
    """(N, n*L) packed sequences -> N examples in the stored layout (see the module docstring).

    doc_ids: per sequence, the ids of the documents its tokens come from (the `doc_ids` column); None leaves the
    column out (token streams that are not made of documents, e.g. the training tests' synthetic ones).
    """
    N, (n, m, L) = len(sequences), (layout.completion_windows, layout.reconstruction_windows, layout.window)
    example_ids = np.arange(first_example_id, first_example_id + N, dtype=np.int64)
    starts = span_starts(seed, split, example_ids, layout)  # (N, m)
    ends = np.minimum(starts + L, ((np.arange(m) + 1) * L)[None, :])  # (N, m)
    positions = starts[:, :, None] + np.arange(L)[None, None, :]  # (N, m, L)
    valid = positions < ends[:, :, None]
    copied = np.take_along_axis(sequences[:, None, :], np.minimum(positions, n * L - 1), axis=2)
    recon_ids = np.where(valid, copied, pad_id)
    input_ids = np.concatenate([sequences.reshape(N, n * L), recon_ids.reshape(N, m * L)], axis=1).astype(np.int32)
    mask = np.concatenate([np.ones((N, n * L), dtype=np.int8), valid.reshape(N, m * L).astype(np.int8)], axis=1)
    labels = np.where(mask == 1, input_ids, IGNORE_INDEX).astype(np.int32)
    prefix = np.broadcast_to(np.asarray(layout.adapter_prefix, dtype=np.int32), (N, n + m))

    def list_column(name, array, dtype):
        return pl.Series(name, np.ascontiguousarray(array)).cast(pl.List(dtype))

    columns = [
        pl.Series("example_id", example_ids),
        list_column("input_ids", input_ids, pl.Int32),
        list_column("labels", labels, pl.Int32),
        list_column("attention_mask", mask, pl.Int8),
        list_column("adapter_prefix", prefix, pl.Int32),
        list_column("span_start", starts.astype(np.int32).reshape(N, m), pl.Int32),
        list_column("span_length", (ends - starts).astype(np.int32).reshape(N, m), pl.Int32),
    ]
    if doc_ids is not None:
        if len(doc_ids) != N:
            raise ValueError(f"doc_ids names the documents of {len(doc_ids)} sequences; there are {N}")
        columns.append(pl.Series(DOCUMENT_IDS, doc_ids, dtype=pl.List(pl.Utf8)))
    return pl.DataFrame(columns)


def sequence_documents(doc_ends: np.ndarray, doc_ids: list[str], count: int, seq_len: int) -> list[list[str]]:
    """The ids of the documents overlapping each of the first `count` sequences of a token stream.

    doc_ends: (D,) end offset (exclusive) of each document in the stream, ascending; doc_ids: their ids.
    Sequence k holds stream tokens [k*seq_len, (k+1)*seq_len).
    """
    starts = np.arange(count, dtype=np.int64) * seq_len
    first = np.searchsorted(doc_ends, starts, side="right")  # first document ending after the start
    last = np.searchsorted(doc_ends, starts + seq_len - 1, side="right")  # the document holding the last token
    return [doc_ids[start : stop + 1] for start, stop in zip(first.tolist(), last.tolist())]


def arrow_shard(frame: pl.DataFrame, layout: WindowLayout) -> pa.Table:
    """The Arrow IPC copy of a shard's examples: fixed-size id/mask/prefix rows, narrow dtypes, no labels."""
    rows = frame.height

    def fixed(column: str, dtype, width: int) -> pa.FixedSizeListArray:
        values = frame[column].explode().to_numpy().astype(dtype)
        if values.size != rows * width:
            raise ValueError(f"{column}: expected {width} values per example, got {values.size} for {rows}")
        return pa.FixedSizeListArray.from_arrays(pa.array(values), width)

    flat = layout.num_windows * layout.window
    return pa.table(
        {
            "example_id": pa.array(frame["example_id"].to_numpy()),
            "input_ids": fixed("input_ids", np.int32, flat),
            "attention_mask": fixed("attention_mask", np.int8, flat),
            "adapter_prefix": fixed("adapter_prefix", np.int32, layout.num_windows),
            # built from Python values: polars' Arrow export depends on how the frame was chunked, and the file must
            # not (the same examples give the same bytes)
            DOCUMENT_IDS: pa.array(frame[DOCUMENT_IDS].to_list(), type=pa.list_(pa.string())),
        }
    )


def write_arrow(table: pa.Table, path: Path) -> None:
    """One record batch, uncompressed: every column is one contiguous array at a fixed place in the file, so a row
    is one positional read (see `ArrowShard`)."""
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks(), max_chunksize=max(table.num_rows, 1))


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
        self.carry_doc_ids: list[str] = []  # the documents of the carried tokens, in stream order
        self.carry_doc_lengths = np.zeros(0, dtype=np.int64)  # their token counts within the carry
        self.max_documents_per_example = 0
        self.continued_examples = 0  # examples sharing a document with the next example
        self.last_example_documents: list[str] = []
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
        doc_ids = self.carry_doc_ids + tokenized["doc_id"].to_list()
        doc_ends = np.cumsum(
            np.concatenate([self.carry_doc_lengths, tokenized["input_ids"].list.len().to_numpy().astype(np.int64)])
        )
        seq_len = self.layout.seq_len
        count = len(stream) // seq_len
        cut = count * seq_len
        self.carry = stream[cut:].copy()
        carried = int(np.searchsorted(doc_ends, cut, side="right"))  # first document ending after the cut
        self.carry_doc_ids = doc_ids[carried:]
        self.carry_doc_lengths = np.diff(doc_ends[carried:], prepend=cut)
        if count:
            documents = sequence_documents(doc_ends, doc_ids, count, seq_len)
            self._count_shared_documents(documents)
            frame = build_examples(
                stream[:cut].reshape(count, seq_len),
                self.examples,
                self.layout,
                self.settings.seed,
                self.split,
                self.tokenizer.pad_id,
                documents,
            )
            self.examples += count
            self.pending.append(frame)
            self.pending_rows += count
            while self.pending_rows >= self.settings.examples_per_shard:
                self._flush(self.settings.examples_per_shard)

    def _count_shared_documents(self, documents: list[list[str]]) -> None:
        """Manifest statistics: the most documents in one example, and how many examples continue a document into
        the next example (each shares its last document with the next one's first)."""
        self.max_documents_per_example = max(self.max_documents_per_example, max(map(len, documents)))
        previous = [self.last_example_documents[-1:]] + [d[-1:] for d in documents[:-1]]
        self.continued_examples += sum(p == d[:1] for p, d in zip(previous, documents))
        self.last_example_documents = documents[-1]

    def _flush(self, rows: int) -> None:
        frame = pl.concat(self.pending)
        shard, rest = frame.head(rows), frame.slice(rows)
        name = shard_name(len(self.shards))
        arrow_name = Path(name).with_suffix(ARROW_SUFFIX).name
        validate(self.schema, shard, f"{self.split}/{name}", 0)
        write_parquet(shard, self.out_dir / name)
        write_arrow(arrow_shard(shard, self.layout), self.out_dir / arrow_name)
        self.shards.append(
            {
                "file": name,
                "rows": shard.height,
                "sha256": sha256_file(self.out_dir / name),
                "arrow_file": arrow_name,
                "arrow_sha256": sha256_file(self.out_dir / arrow_name),
            }
        )
        self.pending, self.pending_rows = ([rest] if rest.height else []), rest.height

    def finish(self, documents_manifest: dict) -> dict:
        if self.pending_rows:
            self._flush(self.pending_rows)
        if not self.shards:
            raise contracts.DataError(
                self.split,
                None,
                None,
                f"not enough tokens for one sequence of {self.layout.seq_len} tokens; raise pretrain_data.token_budget "
                f"or lower val_fraction",
            )
        sources = pl.DataFrame(
            [{"source": s, "documents": d, "tokens": t} for s, (d, t) in sorted(self.per_source.items())],
            schema={"source": pl.Utf8, "documents": pl.Int64, "tokens": pl.Int64},
        )
        validate(contracts.MANIFEST_SOURCES, sources, f"{self.split}/{MANIFEST}:sources")
        validate(contracts.EXAMPLES_MANIFEST_SHARDS, pl.DataFrame(self.shards), f"{self.split}/{MANIFEST}:shards")
        manifest = {
            "kind": "pretrain_examples",
            "split": self.split,
            "examples": self.examples,
            "layout": {
                "window": self.layout.window,
                "completion_windows": self.layout.completion_windows,
                "reconstruction_windows": self.layout.reconstruction_windows,
                "seq_len": self.layout.seq_len,
                "num_windows": self.layout.num_windows,
                "adapter_prefix": self.layout.adapter_prefix,
            },
            "params": self.settings.examples_depends_on(),
            "tokenizer": self.tokenizer.describe(),
            "documents": int(sources["documents"].sum()),
            "tokens": int(sources["tokens"].sum()),
            "dropped_tail_tokens": int(len(self.carry)),
            "document_ids": {
                "column": DOCUMENT_IDS,
                "max_documents_per_example": self.max_documents_per_example,
                "examples_continuing_into_the_next": self.continued_examples,
            },
            "sources": sources.to_dicts(),
            "shards": self.shards,
            "content_sha256": sha256_json([s["sha256"] for s in self.shards]),
            "documents_content_sha256": documents_manifest["content_sha256"],
        }
        write_json(manifest, self.out_dir / MANIFEST)
        return manifest


def write_examples(
    split: str,
    tokenized_batches: Iterable[pl.DataFrame],
    out_dir: str | os.PathLike,
    settings: PretrainDataConfig,
    tokenizer: DocumentTokenizer,
    documents_manifest: dict,
) -> dict:
    """One split folder (shards + manifest, atomically) from batches of already tokenized documents (doc_id, source,
    input_ids) in stream order; returns its manifest. `prepare_examples` does this for both splits at once, from a
    documents folder; this is for token streams made elsewhere (benchmarks, tests)."""
    with atomic_dir(out_dir) as tmp:
        writer = SplitWriter(split, tmp, settings, tokenizer)
        for tokenized in tokenized_batches:
            writer.add(tokenized)
        return writer.finish(documents_manifest)


def is_validation(seed: int, doc_id: str, val_fraction: float) -> bool:
    return hash_order_key(seed, doc_id, "validation") < val_fraction * _HASH_SPACE


def held_out_document(seed: int, doc_id: str, val_fraction: float) -> bool:
    """Whether document `doc_id` belongs to the validation split. Keyed by entity for fictional-entity passages
    (`split_key`): an entity held out here is held out everywhere, so its knowledge-QA questions ask about facts the
    generator never saw in training."""
    return is_validation(seed, split_key(doc_id), val_fraction)


def prepare_examples(
    settings: PretrainDataConfig,
    documents_dir: str | os.PathLike,
    tokenizer_dir: str | os.PathLike,
    train_dir: str | os.PathLike,
    val_dir: str | os.PathLike,
) -> dict[str, dict]:
    """The examples stage: documents dir -> train/ and val/ shard dirs with manifests. Streams by chunks."""
    documents_dir = Path(documents_dir)
    documents_manifest = read_json(documents_dir / MANIFEST)
    tokenizer = DocumentTokenizer.load(tokenizer_dir, settings.bos_token, settings.eos_token)
    token_schema = contracts.tokenized_documents_schema(tokenizer.vocab_size, tokenizer.bos_id, tokenizer.eos_id)
    with atomic_dir(train_dir) as train_tmp, atomic_dir(val_dir) as val_tmp:
        writers = {
            "train": SplitWriter("train", train_tmp, settings, tokenizer),
            "val": SplitWriter("val", val_tmp, settings, tokenizer),
        }
        with tqdm(total=documents_manifest["documents"], unit="doc", desc="tokenize+window") as progress:
            for shard in documents_manifest["shards"]:
                path = documents_dir / shard["file"]
                offset = 0
                for batch in open_parquet(path).iter_batches(batch_size=settings.tokenize_batch_documents):
                    docs = validate(RAW_DOCUMENTS, pl.from_arrow(batch), str(path), offset)
                    tokenized = validate(token_schema, tokenizer.tokenize_frame(docs), str(path), offset)
                    in_val = pl.Series(
                        [held_out_document(settings.seed, d, settings.val_fraction) for d in docs["doc_id"]]
                    )
                    writers["val"].add(tokenized.filter(in_val))
                    writers["train"].add(tokenized.filter(~in_val))
                    offset += batch.num_rows
                    progress.update(batch.num_rows)
        return {split: writer.finish(documents_manifest) for split, writer in writers.items()}
