"""Parquet shards of the data stages, written so that the same rows always give the same bytes."""
from __future__ import annotations

import os

import polars as pl

from ga.errors import reading

PARQUET_COMPRESSION = "zstd"
"""Shard compression; fixed so that the same rows always give the same bytes."""


def read_parquet(path: str | os.PathLike) -> pl.DataFrame:
    """A whole Parquet file as a frame; a missing or unreadable file raises one `UnreadableFile` naming it."""
    with reading(path, "Parquet file"):
        return pl.read_parquet(path)


def open_parquet(path: str | os.PathLike):
    """A `pyarrow.parquet.ParquetFile` to read in batches; a missing or unreadable file raises one `UnreadableFile`
    naming it."""
    import pyarrow.parquet as pq

    with reading(path, "Parquet file"):
        return pq.ParquetFile(path)


def write_parquet(df: pl.DataFrame, path: str | os.PathLike) -> None:
    """Write one shard with fixed settings (no statistics that depend on the writer's run)."""
    df.write_parquet(path, compression=PARQUET_COMPRESSION, statistics=False)


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.parquet"
