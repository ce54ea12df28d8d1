"""Instruction-tuning records as model inputs (docs/method.md#model-inputs-of-a-record): context windows, then
conversation windows, in the window-major layout of the `GenerativeAdapter` training forward.

One record becomes S windows of L = `adapter.window` tokens (S varies per record, S x L <= `sft_data.max_tokens`):

    windows 0 .. c-1   the context (`ContextFormat`: BOS + text + EOS), cut into windows; the last one padded.
                       adapter prefix w (window w is encoded under the adapter of the context windows before it,
                       as the `sequential` strategy encodes a context); no loss.
    windows c .. S-1   the conversation: its QA pairs, in order, packed greedily into chats of whole pairs that
                       fit one window, each chat rendered with the chat template on its own (as a question is asked
                       at inference: a fresh chat with the context's adapter); padded at the end.
                       adapter prefix c (every context window, and no conversation window); loss on the assistant
                       tokens and their end-of-turn tokens only.

A QA pair whose chat alone does not fit one window is dropped (`qa_pair_over_window`); conversation windows that
would pass `max_tokens` are cut from the end with their pairs (`qa_pair_over_max_tokens`); a record left without
a pair, or whose context leaves no room for a conversation window, is dropped (`record_no_qa_pair_fits_window`,
`record_over_max_tokens`); a record whose messages hold a special token's text (which the template would read as
that token) is dropped (`record_special_token_in_conversation`).

Stored layout (one Parquet row per example; ids int32 at rest):

    example_id       Int64         0, 1, 2, ... within the split, in training order
    record_id        Utf8          the record's id (`<dataset>.<n>[.<tag>]`); a record repeated by its dataset's
                                   weight appears in several examples
    dataset          Utf8
    context_windows  Int32         c
    qa_pairs         Int32         QA pairs kept in the conversation windows
    input_ids        List[Int32]   S*L ids, window-major
    labels           List[Int32]   S*L; IGNORE_INDEX (-100) = no loss; otherwise equal to input_ids
    attention_mask   List[Int8]    S*L; 1 = real token, 0 = padding
    adapter_prefix   List[Int32]   S; [0, 1, ..., c-1, c, ..., c]
    context_sources  List[Utf8]    the record's `context_sources` (ga/data/sft/records.py): what its context windows
                                   are made of; the other-context control picks donors that share none of them
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandera.polars as pa
import polars as pl
import pyarrow as pa_arrow

from ga.data.contracts import validate
from ga.data.sft.records import RECORD_ID_PATTERN, record_dataset
from ga.data.tokenize import TOKENIZER_FILE
from ga.format import ChatFormat, ContextFormat, RenderedChat, context_windows
from ga.io import sha256_file, sha256_json
from ga.labels import IGNORE_INDEX

EXAMPLE_COLUMNS = {
    "example_id": pl.Int64,
    "record_id": pl.Utf8,
    "dataset": pl.Utf8,
    "context_windows": pl.Int32,
    "qa_pairs": pl.Int32,
    "input_ids": pl.List(pl.Int32),
    "labels": pl.List(pl.Int32),
    "attention_mask": pl.List(pl.Int8),
    "adapter_prefix": pl.List(pl.Int32),
    "context_sources": pl.List(pl.Utf8),
}


@dataclass(frozen=True)
class SftLayout:
    """Window length and the most windows of one record."""

    window: int
    max_windows: int

    def __post_init__(self):
        if self.window < 2 or self.max_windows < 2:
            raise ValueError(
                f"an instruction-tuning record needs windows of >= 2 tokens and room for >= 2 windows "
                f"(a context and a conversation window), got window={self.window}, "
                f"max_windows={self.max_windows}"
            )

    @classmethod
    def of(cls, window: int, max_tokens: int) -> SftLayout:
        return cls(window, max_tokens // window)

    def to_dict(self) -> dict:
        return {"window": self.window, "max_windows": self.max_windows, "max_tokens": self.window * self.max_windows}


@dataclass
class TokenizedRecord:
    record_id: str
    dataset: str
    context_windows: int
    qa_pairs: int
    input_ids: np.ndarray
    labels: np.ndarray
    attention_mask: np.ndarray
    adapter_prefix: np.ndarray
    context_tokens: int
    conversation_tokens: int
    """Real (unpadded) tokens of the conversation windows, template tokens included."""
    context_sources: list[str]

    @property
    def loss_tokens(self) -> int:
        return int((self.labels != IGNORE_INDEX).sum())

    def statistics(self) -> dict:
        return {
            "record_id": self.record_id,
            "dataset": self.dataset,
            "qa_pairs": self.qa_pairs,
            "context_tokens": self.context_tokens,
            "conversation_tokens": self.conversation_tokens,
            "loss_tokens": self.loss_tokens,
            "windows": len(self.adapter_prefix),
        }


class SftTokenizer:
    """Records (the record format) -> `TokenizedRecord`s in the layout of the module docstring, and drop counts."""

    def __init__(
        self,
        context_format: ContextFormat,
        chat_format: ChatFormat,
        layout: SftLayout,
        pad_id: int,
        vocab_size: int,
        description: dict | None = None,
    ):
        self.context_format, self.chat_format, self.layout = context_format, chat_format, layout
        self.pad_id, self.vocab_size = pad_id, vocab_size
        self.description = description or {}
        """What a manifest records about the tokenizer (ids of the special tokens, tokenizer.json hash)."""

    @classmethod
    def load(cls, model_dir: str | os.PathLike, layout: SftLayout) -> SftTokenizer:
        """The model folder's tokenizer, loaded once for both formats."""
        chat_format = ChatFormat.load(model_dir)
        tokenizer = chat_format.tokenizer
        context_format = ContextFormat.from_tokenizer(tokenizer, backend_use="share")
        # padding as the pretraining data pads: the tokenizer's pad token, else EOS, else id 0
        pad_id = next((i for i in (tokenizer.pad_token_id, tokenizer.eos_token_id) if i is not None), 0)
        vocab_size = tokenizer.backend_tokenizer.get_vocab_size(with_added_tokens=True)
        tokenizer_json = Path(model_dir) / TOKENIZER_FILE
        description = {
            "vocab_size": vocab_size,
            "bos_id": context_format.bos_id,
            "eos_id": context_format.eos_id,
            "pad_id": pad_id,
            "tokenizer_json_sha256": sha256_file(tokenizer_json) if tokenizer_json.exists() else None,
            "chat_template_sha256": sha256_json(tokenizer.chat_template),
        }
        return cls(context_format, chat_format, layout, pad_id, vocab_size, description)

    def tokenize(self, records: pl.DataFrame) -> tuple[list[TokenizedRecord], Counter]:
        """Tokenize records (the record format); drops are counted by (dataset, reason)."""
        drops: Counter = Counter()
        ids = records["id"].to_list()
        datasets = [record_dataset(identifier) for identifier in ids]
        conversations = records["conversations"].to_list()
        sources = records["context_sources"].to_list()
        keep = []
        for index, messages in enumerate(conversations):
            if any(self.chat_format.has_special_text(m["content"]) for m in messages):
                drops[(datasets[index], "record_special_token_in_conversation")] += 1
            else:
                keep.append(index)
        contexts = records["context"].to_list()
        context_ids = self.context_format.ids_batch([contexts[i] for i in keep])
        chats = [self.chat_format.render(conversations[i]) for i in keep]
        encoded = self.chat_format.encode(chats)
        result = []
        for index, context, chat, (chat_ids, chat_labels) in zip(keep, context_ids, chats, encoded):
            dataset = datasets[index]
            windows = (
                [(chat_ids, chat_labels, chat.pairs)]
                if len(chat_ids) <= self.layout.window
                else self._pack(conversations[index], drops, dataset)
            )
            tokenized = self._assemble(ids[index], dataset, context, windows, drops, sources[index])
            if tokenized is not None:
                result.append(tokenized)
        return result, drops

    def _pack(self, messages: Sequence[dict], drops: Counter, dataset: str) -> list[tuple[np.ndarray, np.ndarray, int]]:
        """Whole QA pairs, in order, packed greedily into chats that fit one window each."""
        window, pairs = self.layout.window, len(messages) // 2
        packed, first = [], 0

        def chat(start: int, stop: int) -> tuple[np.ndarray, np.ndarray, int]:
            rendered: RenderedChat = self.chat_format.render(messages[2 * start : 2 * stop])
            chat_ids, chat_labels = self.chat_format.encode([rendered])[0]
            return chat_ids, chat_labels, rendered.pairs

        while first < pairs:
            best = chat(first, first + 1)
            if len(best[0]) > window:
                drops[(dataset, "qa_pair_over_window")] += 1
                first += 1
                continue
            stop = first + 1
            while stop < pairs:
                longer = chat(first, stop + 1)
                if len(longer[0]) > window:
                    break
                best, stop = longer, stop + 1
            packed.append(best)
            first = stop
        return packed

    def _assemble(
        self,
        record_id: str,
        dataset: str,
        context: list[int],
        windows: list[tuple[np.ndarray, np.ndarray, int]],
        drops: Counter,
        context_sources: list[str],
    ) -> TokenizedRecord | None:
        L = self.layout.window
        context_grid, context_mask = context_windows(context, L, self.pad_id)
        c = len(context_grid)
        room = self.layout.max_windows - c
        if room < 1:
            drops[(dataset, "record_over_max_tokens")] += 1
            return None
        if len(windows) > room:
            drops[(dataset, "qa_pair_over_max_tokens")] += sum(pairs for _, _, pairs in windows[room:])
            windows = windows[:room]
        if not windows:
            drops[(dataset, "record_no_qa_pair_fits_window")] += 1
            return None
        S = c + len(windows)
        input_ids = np.full(S * L, self.pad_id, dtype=np.int32)
        labels = np.full(S * L, IGNORE_INDEX, dtype=np.int32)
        mask = np.zeros(S * L, dtype=np.int8)
        input_ids[: c * L], mask[: c * L] = context_grid.reshape(-1), context_mask.reshape(-1)
        for w, (chat_ids, chat_labels, _) in enumerate(windows):
            start = (c + w) * L
            input_ids[start : start + len(chat_ids)] = chat_ids
            labels[start : start + len(chat_ids)] = chat_labels
            mask[start : start + len(chat_ids)] = 1
        prefix = np.minimum(np.arange(S, dtype=np.int32), c)
        return TokenizedRecord(
            record_id,
            dataset,
            c,
            sum(pairs for _, _, pairs in windows),
            input_ids,
            labels,
            mask,
            prefix,
            len(context),
            sum(len(chat_ids) for chat_ids, _, _ in windows),
            list(context_sources),
        )


# ---------------------------------------------------------------- frames and contract
def _list_series(name: str, arrays: Sequence[np.ndarray], dtype: pl.DataType, numpy_dtype) -> pl.Series:
    """A List column from per-row arrays, built in one piece (no per-row Python objects)."""
    lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = np.concatenate(arrays).astype(numpy_dtype, copy=False) if arrays else np.zeros(0, numpy_dtype)
    array = pa_arrow.LargeListArray.from_arrays(pa_arrow.array(offsets), pa_arrow.array(values))
    return pl.Series(name, array).cast(pl.List(dtype))


def examples_frame(records: Sequence[TokenizedRecord], first_example_id: int) -> pl.DataFrame:
    """Tokenized records as rows of the stored layout, numbered from `first_example_id`."""
    return pl.DataFrame(
        [
            pl.Series("example_id", np.arange(first_example_id, first_example_id + len(records), dtype=np.int64)),
            pl.Series("record_id", [r.record_id for r in records], dtype=pl.Utf8),
            pl.Series("dataset", [r.dataset for r in records], dtype=pl.Utf8),
            pl.Series("context_windows", [r.context_windows for r in records], dtype=pl.Int32),
            pl.Series("qa_pairs", [r.qa_pairs for r in records], dtype=pl.Int32),
            _list_series("input_ids", [r.input_ids for r in records], pl.Int32, np.int32),
            _list_series("labels", [r.labels for r in records], pl.Int32, np.int32),
            _list_series("attention_mask", [r.attention_mask for r in records], pl.Int8, np.int8),
            _list_series("adapter_prefix", [r.adapter_prefix for r in records], pl.Int32, np.int32),
            pl.Series("context_sources", [r.context_sources for r in records], dtype=pl.List(pl.Utf8)),
        ]
    )


def examples_schema(layout: SftLayout, vocab_size: int) -> pa.DataFrameSchema:
    """Instruction-tuning examples: shapes follow the windows, ids in range, labels only on real tokens of
    conversation windows and equal to their ids, at least one labelled token, prefixes as the layout says."""
    L = layout.window
    windows = pl.col("adapter_prefix").list.len()
    context = pl.col("context_windows")

    def frame_check(name, expression):
        return pa.Check(lambda data: data.lazyframe.select(expression.alias(name)), name=name)

    def labels_consistent(data: pa.PolarsData) -> pl.LazyFrame:
        per_token = (
            data.lazyframe.select("input_ids", "labels", "attention_mask")
            .with_row_index("_row")
            .explode(["input_ids", "labels", "attention_mask"])
        )
        label, ids, mask = pl.col("labels"), pl.col("input_ids"), pl.col("attention_mask")
        token_ok = (label == IGNORE_INDEX) | ((label == ids) & (mask == 1))
        return per_token.group_by("_row", maintain_order=True).agg(token_ok.all().alias("ok")).sort("_row").select("ok")

    def prefix_follows_layout(data: pa.PolarsData) -> pl.LazyFrame:
        per_window = (
            data.lazyframe.select("adapter_prefix", "context_windows")
            .with_row_index("_row")
            .explode("adapter_prefix")
            .with_columns(pl.int_range(pl.len()).over("_row").alias("_window"))
        )
        expected = pl.min_horizontal(pl.col("_window"), pl.col("context_windows"))
        return (
            per_window.group_by("_row", maintain_order=True)
            .agg((pl.col("adapter_prefix") == expected).all().alias("ok"))
            .sort("_row")
            .select("ok")
        )

    ids_in_range = [
        pa.Check(lambda d: d.lazyframe.select(pl.col(d.key).list.min() >= 0), name="ids_non_negative"),
        pa.Check(lambda d: d.lazyframe.select(pl.col(d.key).list.max() < vocab_size), name="ids_below_vocab_size"),
    ]
    binary = pa.Check(
        lambda d: d.lazyframe.select(pl.col(d.key).list.eval(pl.element().is_in([0, 1])).list.all()), name="binary"
    )
    return pa.DataFrameSchema(
        {
            "example_id": pa.Column(pl.Int64, unique=True, checks=pa.Check.ge(0)),
            "record_id": pa.Column(pl.Utf8, checks=pa.Check.str_matches(f"^{RECORD_ID_PATTERN}$")),
            "dataset": pa.Column(pl.Utf8),
            "context_windows": pa.Column(pl.Int32, checks=pa.Check.ge(1)),
            "qa_pairs": pa.Column(pl.Int32, checks=pa.Check.ge(1)),
            "input_ids": pa.Column(pl.List(pl.Int32), checks=ids_in_range),
            "labels": pa.Column(pl.List(pl.Int32)),
            "attention_mask": pa.Column(pl.List(pl.Int8), checks=binary),
            "adapter_prefix": pa.Column(pl.List(pl.Int32)),
            "context_sources": pa.Column(
                pl.List(pl.Utf8),
                checks=pa.Check(
                    lambda d: d.lazyframe.select(pl.col(d.key).list.len() > 0), name="names_its_context_sources"
                ),
            ),
        },
        checks=[
            frame_check("windows_within_layout", (windows > context) & (windows <= layout.max_windows)),
            frame_check(
                "lengths_are_windows_x_window",
                (pl.col("input_ids").list.len() == windows * L)
                & (pl.col("labels").list.len() == windows * L)
                & (pl.col("attention_mask").list.len() == windows * L),
            ),
            pa.Check(prefix_follows_layout, name="adapter_prefix_follows_layout"),
            pa.Check(labels_consistent, name="labels_consistent_with_ids_and_mask"),
            frame_check(
                "context_windows_carry_no_loss", pl.col("labels").list.slice(0, context * L).list.max() == IGNORE_INDEX
            ),
            frame_check("has_loss_tokens", pl.col("labels").list.max() >= 0),
        ],
        strict=True,
        name="sft_examples",
    )


def validate_examples(frame: pl.DataFrame, layout: SftLayout, vocab_size: int, file: str) -> pl.DataFrame:
    return validate(examples_schema(layout, vocab_size), frame, file)


# ---------------------------------------------------------------- loaders
EXAMPLE_META_COLUMNS = ("record_id", "dataset", "context_windows", "context_sources")


def example_tensors(row: dict, window: int) -> dict:
    """One stored row as the training loop takes it: input_ids, attention_mask, labels (S, L) and adapter_prefix
    (S,), torch.long, plus record_id, dataset, context_windows and context_sources."""
    import torch

    windows = len(row["adapter_prefix"])

    def grid(column):
        return torch.as_tensor(np.asarray(row[column], dtype=np.int64)).reshape(windows, window)

    return {
        "input_ids": grid("input_ids"),
        "attention_mask": grid("attention_mask"),
        "labels": grid("labels"),
        "adapter_prefix": torch.as_tensor(np.asarray(row["adapter_prefix"], dtype=np.int64)),
        **{column: row[column] for column in EXAMPLE_META_COLUMNS},
    }


def _split_frame(split_dir: Path) -> tuple[pl.DataFrame, dict]:
    from ga.data.parquet import read_parquet
    from ga.io import read_json

    manifest = read_json(split_dir / "manifest.json")
    frame = pl.concat([read_parquet(split_dir / shard["file"]) for shard in manifest["shards"]])
    return frame, manifest


def load_examples(split_dir: str | os.PathLike) -> list[dict]:
    """Every example of a split folder as tensors (see `example_tensors`; S varies per example). Batching records
    of different S is the training loader's business (pad with windows that have no tokens and no loss)."""
    frame, manifest = _split_frame(Path(split_dir))
    window = manifest["layout"]["window"]
    return [example_tensors(row, window) for row in frame.iter_rows(named=True)]


class SftExamples:
    """The examples of one split, made into tensors one at a time (`examples[i]`, as `example_tensors` gives it).

    The split's Parquet shards are read once into Arrow columns (no per-token Python objects); only the example
    asked for is widened to tensors. Host memory holds the split's Arrow data: fine for the embedded mixture and
    for the paper's (~60k records of <= 8,192 tokens: a few GB); a memory-mapped copy as pretraining's
    (ga/data/examples.py) would bound it further.

    interleave_datasets: order the examples round robin over the datasets (for a held-out split scored in part).
    `donor_for(i)`: the other-context donor of held-out example i for validation (`context_donor`): an example
    whose context shares no source with i's, of the same dataset where one exists, so that the control changes the
    context and not the kind of task; None where every other example shares a source with i (the caller counts the
    arm as unavailable for i).
    """

    def __init__(self, split_dir: str | os.PathLike, interleave_datasets: bool = False):
        self.split_dir = Path(split_dir)
        frame, self.manifest = _split_frame(self.split_dir)
        self.window = int(self.manifest["layout"]["window"])
        if interleave_datasets:
            # Round robin over the datasets (stored order within each): the first n examples, as validation takes
            # them with `val_examples`, cover every dataset.
            frame = (
                frame.with_columns(pl.int_range(pl.len()).over("dataset").alias("_rank"))
                .sort(["_rank", "dataset"], maintain_order=True)
                .drop("_rank")
            )
        self._table = frame.to_arrow()
        self.record_ids = frame["record_id"].to_list()
        self.datasets = frame["dataset"].to_list()
        self.context_sources = [frozenset(sources) for sources in frame["context_sources"].to_list()]
        self._donors: dict[int, int | None] = {}
        self.context_windows = np.asarray(frame["context_windows"].to_list(), dtype=np.int64)
        self.windows = frame["adapter_prefix"].list.len().to_numpy().astype(np.int64)
        """Windows of each example (S)."""
        self.real_tokens = frame["attention_mask"].list.sum().to_numpy().astype(np.int64)
        """Real (unpadded) tokens of each example."""

    def __len__(self) -> int:
        return len(self.record_ids)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"example {index} of {len(self)}")
        row = {name: column[0] for name, column in self._table.slice(index, 1).to_pydict().items()}
        return example_tensors(row, self.window)

    def donor_for(self, index: int) -> int | None:
        if index not in self._donors:
            self._donors[index] = context_donor(self.context_sources, self.datasets, index)
        return self._donors[index]


def context_donor(context_sources: Sequence[frozenset[str]], datasets: Sequence[str], receiver: int) -> int | None:
    """The other-context donor of example `receiver`: the nearest later example (cyclically) whose context sources
    are disjoint from the receiver's and whose dataset is the receiver's; failing that, the nearest later disjoint
    example of another dataset; failing that, None. Disjoint sources imply a different record (a record names at
    least one source). Deterministic: it depends on the examples' order, sources and datasets only."""
    n = len(context_sources)
    own = context_sources[receiver]
    disjoint = [j for j in ((receiver + step) % n for step in range(1, n)) if context_sources[j].isdisjoint(own)]
    same_dataset = [j for j in disjoint if datasets[j] == datasets[receiver]]
    return (same_dataset or disjoint or [None])[0]
