"""Reading prepared pretraining examples (the layout is described in ga/data/pretrain.py, which writes them).

- `open_split(path)` -> (`PretrainExamples`, manifest): lazy, one example at a time from the Arrow copies; what
  training uses (host memory does not grow with the split).
- `load_examples(path)` -> dict of tensors of the whole split; `iter_batches(path, batch_size, ...)` -> dicts with
  input_ids/attention_mask/labels (B, S, L) and adapter_prefix (B, S), all torch.long, plus example_id (B,).
"""

from __future__ import annotations

import math
import mmap
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ga.errors import SplitFormatError, reading
from ga.labels import IGNORE_INDEX

MANIFEST = "manifest.json"
ARROW_SUFFIX = ".arrow"
"""Suffix of a Parquet shard's uncompressed Arrow IPC copy (same stem)."""
DOCUMENT_IDS = "doc_ids"
"""Column naming, per example, the documents its tokens come from."""


def read_manifest(split_dir: str | os.PathLike) -> dict:
    from ga.io import read_json

    return read_json(Path(split_dir) / MANIFEST)


def _read_table(shard: Path) -> pa.Table:
    with reading(shard, "Parquet file", (pa.ArrowException,)):
        return pq.read_table(shard)


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
    table = pa.concat_tables([_read_table(p) for p in _shard_paths(path)])
    return _to_tensors(table, num_windows, window)


def iter_batches(
    path: str | os.PathLike, batch_size: int, shuffle_seed: int | None = None, drop_last: bool = False
) -> Iterator[dict]:
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
        table = _read_table(shard)
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


# ---------------------------------------------------------------- lazy loader (what training uses)
class ArrowShard:
    """One Arrow IPC shard: where each column's rows lie in the file, and positional reads of one row.

    The file is memory-mapped only to parse its layout without copying (pyarrow gives each column's buffer inside
    the map, hence its file offset); rows are then read with `os.pread`, which goes through the same page cache
    but maps nothing. A memory-mapped read would leave each page it touched (and the kernel's fault-around
    neighbours) mapped and counted in the process's resident memory until unmapped: over an epoch every process
    would show most of the split as resident (shared page cache, but counted once per process by tools and by
    schedulers that sum per-process RSS).
    """

    def __init__(self, path: Path, num_windows: int, window: int):
        self.path = path
        self.file = open(path, "rb")  # open for as long as rows are read; closed with the object
        self.map = mmap.mmap(self.file.fileno(), 0, access=mmap.ACCESS_READ)
        buffer = pa.py_buffer(self.map)
        reader = pa.ipc.open_file(pa.BufferReader(buffer))
        if reader.num_record_batches != 1:
            raise SplitFormatError(f"{path}: expected one record batch, found {reader.num_record_batches}")
        batch = reader.get_batch(0)
        self.rows = batch.num_rows
        shapes = {
            "example_id": (),
            "input_ids": (num_windows, window),
            "attention_mask": (num_windows, window),
            "adapter_prefix": (num_windows,),
        }
        self.places: dict[str, tuple[int, np.dtype, tuple[int, ...]]] = {}  # column -> (file offset, dtype, row shape)
        for name, shape in shapes.items():
            column = batch.column(name)
            values = column.flatten() if pa.types.is_fixed_size_list(column.type) else column
            view = values.to_numpy(zero_copy_only=True)  # a view into the map: touches no page
            self.places[name] = (view.ctypes.data - buffer.address, view.dtype, shape)
        self.document_ids = batch.column(DOCUMENT_IDS)  # read through the map, only for donor_for / documents

    def read(self, row: int) -> dict[str, np.ndarray]:
        """One row's values, in their stored (narrow) dtypes."""
        values = {}
        for name, (offset, dtype, shape) in self.places.items():
            size = dtype.itemsize * math.prod(shape)
            data = os.pread(self.file.fileno(), size, offset + row * size)
            if len(data) != size:
                raise SplitFormatError(f"{self.path}: row {row} of {name} is cut short")
            values[name] = np.frombuffer(data, dtype=dtype).reshape(shape)
        return values


class PretrainExamples:
    """The examples of one split, read one at a time from the Arrow copies of its shards.

    `examples[i]` is example i of the packed stream (the row order of `load_examples`) as the training loop takes
    it: input_ids, attention_mask, labels (S, L) and adapter_prefix (S,), torch.long, plus example_id (a 0-d
    tensor). Only that example's rows are read and widened: ids stay int32 and masks int8 in the file, and labels
    are derived (input_ids where attention_mask is 1, IGNORE_INDEX elsewhere: the stored layout, enforced by the
    examples contract). Host memory therefore does not grow with the split: a process holds the shards' layouts
    and the example it is reading (see `ArrowShard`).

    `donor_for(i)` names the other-context donor of example i for validation (see there).
    """

    def __init__(self, split_dir: str | os.PathLike):
        split_dir = Path(split_dir)
        if not (split_dir / MANIFEST).is_file():
            raise SplitFormatError(f"{split_dir}: no {MANIFEST} (run the pretrain_data stage first)")
        self.split_dir = split_dir
        self.manifest = read_manifest(split_dir)
        layout = self.manifest["layout"]
        self.num_windows, self.window = int(layout["num_windows"]), int(layout["window"])
        self._shards = [self._open_shard(shard) for shard in self.manifest["shards"]]
        self._shard_starts = np.cumsum([0] + [shard.rows for shard in self._shards])  # index of each first row
        self._documents: list[frozenset[str]] | None = None  # read on the first donor_for
        self._donors: dict[int, int] = {}

    def _open_shard(self, shard: dict) -> ArrowShard:
        if "arrow_file" not in shard:
            raise SplitFormatError(
                f"{self.split_dir}: shard {shard['file']} has no Arrow copy (written by an older ga, which also "
                f"stored no document ids); rerun the pretrain_data stage for this split"
            )
        opened = ArrowShard(self.split_dir / shard["arrow_file"], self.num_windows, self.window)
        if opened.rows != shard["rows"]:
            raise SplitFormatError(f"{opened.path}: {opened.rows} rows; the manifest says {shard['rows']}")
        return opened

    def __len__(self) -> int:
        return int(self._shard_starts[-1])

    def _locate(self, index: int) -> tuple[ArrowShard, int]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"example {index} of a split of {len(self)}")
        index %= len(self)
        shard = int(np.searchsorted(self._shard_starts, index, side="right")) - 1
        return self._shards[shard], index - int(self._shard_starts[shard])

    def __getitem__(self, index: int) -> dict:
        import torch

        shard, row = self._locate(int(index))
        values = shard.read(row)
        input_ids = torch.from_numpy(values["input_ids"].astype(np.int64))
        attention_mask = torch.from_numpy(values["attention_mask"].astype(np.int64))
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "labels": input_ids.masked_fill(attention_mask == 0, IGNORE_INDEX),
            "adapter_prefix": torch.from_numpy(values["adapter_prefix"].astype(np.int64)),
            "example_id": torch.tensor(int(values["example_id"])),
        }

    def documents(self, index: int) -> list[str]:
        """The ids of the documents whose tokens example `index` holds, in stream order."""
        shard, row = self._locate(int(index))
        return shard.document_ids[row].as_py()

    def donor_for(self, receiver: int) -> int:
        """The other-context donor of example `receiver`: the nearest later example (cyclically over the split)
        that shares no document with it.

        The next example is not enough: a document longer than a sequence continues into it, so its adapter would
        carry the receiver's own text. Deterministic; raises ValueError when every other example shares a document
        with the receiver.
        """
        receiver = int(receiver) % len(self)
        if receiver not in self._donors:
            if self._documents is None:
                self._documents = [frozenset(ids) for shard in self._shards for ids in shard.document_ids.to_pylist()]
            self._donors[receiver] = nearest_disjoint_example(self._documents, receiver, self.split_dir)
        return self._donors[receiver]


def nearest_disjoint_example(documents: list[frozenset[str]], receiver: int, where: object = "the split") -> int:
    """The first example after `receiver` (cyclically) whose document set is disjoint from the receiver's."""
    n = len(documents)
    for step in range(1, n):
        candidate = (receiver + step) % n
        if documents[candidate].isdisjoint(documents[receiver]):
            return candidate
    raise ValueError(
        f"{where}: example {receiver} shares a document with every other example of its split ({n} "
        f"examples), so no other-context donor exists; hold out more documents (pretrain_data."
        f"val_fraction) or shorten the sequences"
    )


def open_split(split_dir: str | os.PathLike) -> tuple[PretrainExamples, dict]:
    """A split folder's examples, read lazily (see `PretrainExamples`), and its manifest."""
    examples = PretrainExamples(split_dir)
    return examples, examples.manifest
