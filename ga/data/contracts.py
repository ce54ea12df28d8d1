"""pandera (polars API) contracts for every boundary of the data stages.

- raw documents (what every source materialises): doc_id, source, text [, metadata]
- tokenized documents: doc_id, source, input_ids (BOS + tokens + EOS)
- pretraining examples: the window layout of docs/method.md#pretraining (see `ga.data.pretrain` for the exact layout),
  with the ids of the documents each example's tokens come from
- manifests: their per-source and per-shard tables

`validate` turns pandera's failure table into a `DataError` that names the file, the row and the column.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from ga.data.config import WindowLayout
from ga.errors import DataError
from ga.labels import IGNORE_INDEX

"""Label value for tokens without loss (Hugging Face / PyTorch cross-entropy convention)."""

MAX_REPORTED_FAILURES = 5
"""How many failing cells a DataError lists before summarising the rest."""


def _non_blank(data: pa.PolarsData) -> pl.LazyFrame:
    return data.lazyframe.select(pl.col(data.key).str.strip_chars().str.len_chars() > 0)


def _non_empty_string_column(**kw) -> pa.Column:
    return pa.Column(pl.Utf8, nullable=False, checks=pa.Check(_non_blank, name="non_empty_string"), **kw)


RAW_DOCUMENTS = pa.DataFrameSchema(
    {
        "doc_id": _non_empty_string_column(unique=True),
        "source": _non_empty_string_column(),
        "text": _non_empty_string_column(),
        "metadata": pa.Column(pl.Utf8, nullable=True, required=False),
    },
    strict=True,
    name="raw_documents",
)
"""Common schema of every source's documents. `metadata` is an optional JSON object serialised as a string."""

RAW_DOCUMENT_COLUMNS = ("doc_id", "source", "text", "metadata")


def tokenized_documents_schema(vocab_size: int, bos_id: int | None, eos_id: int | None) -> pa.DataFrameSchema:
    """Tokenized documents: ids in [0, vocab_size), at least one token besides BOS/EOS, framed by BOS/EOS."""
    ids = pl.col("input_ids")
    specials = int(bos_id is not None) + int(eos_id is not None)
    checks = [
        pa.Check(lambda d: d.lazyframe.select(pl.col(d.key).list.len() > specials), name="has_tokens"),
        pa.Check(lambda d: d.lazyframe.select(pl.col(d.key).list.min() >= 0), name="ids_non_negative"),
        pa.Check(lambda d: d.lazyframe.select(pl.col(d.key).list.max() < vocab_size), name="ids_below_vocab_size"),
    ]
    if bos_id is not None:
        checks.append(pa.Check(lambda d: d.lazyframe.select(ids.list.first() == bos_id), name="starts_with_bos"))
    if eos_id is not None:
        checks.append(pa.Check(lambda d: d.lazyframe.select(ids.list.last() == eos_id), name="ends_with_eos"))
    return pa.DataFrameSchema(
        {
            "doc_id": _non_empty_string_column(unique=True),
            "source": _non_empty_string_column(),
            "input_ids": pa.Column(pl.List(pl.Int32), nullable=False, checks=checks),
        },
        strict=True,
        name="tokenized_documents",
    )


def examples_schema(layout: WindowLayout, vocab_size: int) -> pa.DataFrameSchema:
    """Training examples: shapes, id range, labels/mask consistency, prefixes and copied spans match the layout, and
    each example names the documents its tokens come from."""
    L, n, m = layout.window, layout.completion_windows, layout.reconstruction_windows
    flat = layout.num_windows * L
    expected_prefix = pl.lit(pl.Series([layout.adapter_prefix], dtype=pl.List(pl.Int32)))

    def length_is(size):
        return pa.Check(lambda d: d.lazyframe.select(pl.col(d.key).list.len() == size), name=f"length_{size}")

    def labels_consistent(data: pa.PolarsData) -> pl.LazyFrame:
        # every real (unmasked) token is labelled with its own id and padding never is: exactly what the lazy loader
        # (ga.data.examples.PretrainExamples) derives from input_ids and attention_mask instead of reading labels
        per_token = (
            data.lazyframe.select("input_ids", "labels", "attention_mask")
            .with_row_index("_row")
            .explode(["input_ids", "labels", "attention_mask"])
        )
        lab, ids, mask = pl.col("labels"), pl.col("input_ids"), pl.col("attention_mask")
        token_ok = pl.when(mask == 1).then(lab == ids).otherwise(lab == IGNORE_INDEX)
        return (
            per_token.group_by("_row", maintain_order=True)
            .agg(token_ok.all().alias("labels_consistent"))
            .sort("_row")
            .select("labels_consistent")
        )

    def completion_windows_full(data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("attention_mask").list.slice(0, n * L).list.sum() == n * L)

    def spans_consistent(data: pa.PolarsData) -> pl.LazyFrame:
        ok = pl.lit(True)
        ids, mask = pl.col("input_ids"), pl.col("attention_mask")
        for j in range(m):
            start, length = pl.col("span_start").list.get(j), pl.col("span_length").list.get(j)
            window_start = (n + j) * L
            ok = (
                ok
                & (start >= 0)
                & (start < (j + 1) * L)
                & (length == pl.min_horizontal(pl.lit(L), (j + 1) * L - start))
                & (mask.list.slice(window_start, L).list.sum() == length)
                & (mask.list.slice(window_start, length).list.min() == 1)
                & (ids.list.slice(window_start, length) == ids.list.slice(start, length))
            )
        return data.lazyframe.select(ok.alias("spans_consistent"))

    def each_document_named(data: pa.PolarsData) -> pl.LazyFrame:
        named = pl.element().is_not_null() & (pl.element().str.strip_chars().str.len_chars() > 0)
        return data.lazyframe.select(pl.col(data.key).list.eval(named).list.all())

    document_checks = [
        pa.Check(lambda d: d.lazyframe.select(pl.col(d.key).list.len() >= 1), name="has_documents"),
        pa.Check(each_document_named, name="document_ids_non_empty"),
        pa.Check(
            lambda d: d.lazyframe.select(pl.col(d.key).list.n_unique() == pl.col(d.key).list.len()),
            name="document_ids_unique_in_example",
        ),
    ]
    id_checks = [
        length_is(flat),
        pa.Check(lambda d: d.lazyframe.select(pl.col(d.key).list.min() >= 0), name="ids_non_negative"),
        pa.Check(lambda d: d.lazyframe.select(pl.col(d.key).list.max() < vocab_size), name="ids_below_vocab_size"),
    ]
    return pa.DataFrameSchema(
        {
            "example_id": pa.Column(pl.Int64, unique=True, checks=pa.Check.ge(0)),
            "input_ids": pa.Column(pl.List(pl.Int32), checks=id_checks),
            "labels": pa.Column(pl.List(pl.Int32), checks=[length_is(flat)]),
            "attention_mask": pa.Column(
                pl.List(pl.Int8),
                checks=[
                    length_is(flat),
                    pa.Check(
                        lambda d: d.lazyframe.select(pl.col(d.key).list.eval(pl.element().is_in([0, 1])).list.all()),
                        name="binary",
                    ),
                ],
            ),
            "adapter_prefix": pa.Column(
                pl.List(pl.Int32),
                checks=pa.Check(lambda d: d.lazyframe.select(pl.col(d.key) == expected_prefix), name="matches_layout"),
            ),
            "span_start": pa.Column(pl.List(pl.Int32), checks=[length_is(m)]),
            "span_length": pa.Column(pl.List(pl.Int32), checks=[length_is(m)]),
            "doc_ids": pa.Column(pl.List(pl.Utf8), nullable=False, checks=document_checks),
        },
        checks=[
            pa.Check(labels_consistent, name="labels_consistent_with_ids_and_mask"),
            pa.Check(completion_windows_full, name="completion_windows_full"),
            pa.Check(spans_consistent, name="reconstruction_spans_copied_from_prefix"),
        ],
        strict=True,
        name="pretrain_examples",
    )


MANIFEST_SOURCES = pa.DataFrameSchema(
    {
        "source": _non_empty_string_column(unique=True),
        "documents": pa.Column(pl.Int64, checks=pa.Check.ge(1)),
        "tokens": pa.Column(pl.Int64, checks=pa.Check.ge(1)),
    },
    strict=True,
    name="manifest_sources",
)
"""Per-source document and token counts (tokens include BOS/EOS)."""

MANIFEST_SHARDS = pa.DataFrameSchema(
    {
        "file": _non_empty_string_column(unique=True),
        "rows": pa.Column(pl.Int64, checks=pa.Check.ge(1)),
        "sha256": pa.Column(pl.Utf8, checks=pa.Check.str_matches(r"^[0-9a-f]{64}$")),
    },
    strict=True,
    name="manifest_shards",
)

EXAMPLES_MANIFEST_SHARDS = pa.DataFrameSchema(
    {
        **MANIFEST_SHARDS.columns,
        "arrow_file": _non_empty_string_column(unique=True),
        "arrow_sha256": pa.Column(pl.Utf8, checks=pa.Check.str_matches(r"^[0-9a-f]{64}$")),
    },
    strict=True,
    name="examples_manifest_shards",
)
"""Shards of an examples split: each Parquet shard and its uncompressed Arrow IPC copy (what training memory-maps)."""


def validate(schema: pa.DataFrameSchema, df: pl.DataFrame, file: str, row_offset: int = 0) -> pl.DataFrame:
    """Validate `df` (rows `row_offset`.. of `file`) or raise a DataError naming file, row and column."""
    try:
        return schema.validate(df, lazy=True)
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
        first = cases.row(0, named=True)
        row = first.get("index")
        if first["check"] == "field_uniqueness":  # name the repeat, not the first occurrence
            same = cases.filter(
                (pl.col("column") == first["column"]) & (pl.col("failure_case") == first["failure_case"])
            )
            row = same["index"].max()
        row = row + row_offset if row is not None else None
        column = first.get("column")
        what = "duplicate value" if first["check"] == "field_uniqueness" else f"{first['check']} failed on"
        problem = f"{what} {str(first['failure_case'])[:200]!r} ({schema.name}: {first['check']})"
        if len(cases) > 1:
            others = [
                f"row {c['index'] + row_offset if c['index'] is not None else '?'}/{c['column']}: {c['check']}"
                for c in cases.slice(1, MAX_REPORTED_FAILURES).iter_rows(named=True)
            ]
            problem += f"; also {len(cases) - 1} more: " + ", ".join(others)
        raise DataError(file, row, column, problem) from None
    except pa.errors.SchemaError as err:  # raised for whole-frame problems pandera cannot collect lazily
        raise DataError(file, None, getattr(err, "column_name", None), str(err)) from None
