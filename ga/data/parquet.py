"""Parquet shards of the data stages, written so that the same rows always give the same bytes, and files checked
against their pandera contract on the way out and in."""

from __future__ import annotations

import os
from pathlib import Path

import pandera.polars as pa
import polars as pl

from ga.data.contracts import DataError, validate
from ga.errors import reading
from ga.io import atomic_file

PARQUET_COMPRESSION = "zstd"
"""Shard compression; fixed so that the same rows always give the same bytes."""


def read_parquet(path: str | os.PathLike) -> pl.DataFrame:
    """A whole Parquet file as a frame; a missing or unreadable file raises one `UnreadableFile` naming it."""
    with reading(path, "Parquet file", (pl.exceptions.PolarsError,)):
        return pl.read_parquet(path)


def open_parquet(path: str | os.PathLike):
    """A `pyarrow.parquet.ParquetFile` to read in batches; a missing or unreadable file raises one `UnreadableFile`
    naming it."""
    import pyarrow
    import pyarrow.parquet as pq

    with reading(path, "Parquet file", (pyarrow.ArrowException,)):
        return pq.ParquetFile(path)


def write_parquet(df: pl.DataFrame, path: str | os.PathLike) -> None:
    """Write one shard with fixed settings (no statistics that depend on the writer's run)."""
    df.write_parquet(path, compression=PARQUET_COMPRESSION, statistics=False)


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.parquet"


def write_checked_parquet(schema: pa.DataFrameSchema, frame: pl.DataFrame, path: str | os.PathLike) -> Path:
    """`frame` checked against `schema`, then written to `path` atomically (no partial file on failure)."""
    frame = validate(schema, frame, str(path))
    with atomic_file(path) as tmp:
        write_parquet(frame, tmp)
    return Path(path)


def read_checked_parquet(schema: pa.DataFrameSchema, path: str | os.PathLike) -> pl.DataFrame:
    """A Parquet file checked against `schema`; a DataError names the file (unreadable) or its row and column."""
    try:
        frame = pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as err:
        raise DataError(str(path), None, None, f"not a readable Parquet file: {err}") from None
    return validate(schema, frame, str(path))
