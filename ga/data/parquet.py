"""Parquet shards of the data stages, written so that the same rows always give the same bytes."""
from __future__ import annotations

import os

import polars as pl

PARQUET_COMPRESSION = "zstd"
"""Shard compression; fixed so that the same rows always give the same bytes."""


def write_parquet(df: pl.DataFrame, path: str | os.PathLike) -> None:
    """Write one shard with fixed settings (no statistics that depend on the writer's run)."""
    df.write_parquet(path, compression=PARQUET_COMPRESSION, statistics=False)


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.parquet"
