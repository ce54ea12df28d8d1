"""File helpers shared by the data stages: atomic output directories, deterministic Parquet, content hashes."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator

import polars as pl

PARQUET_COMPRESSION = "zstd"
"""Shard compression; fixed so that the same rows always give the same bytes."""

HASH_BLOCK_BYTES = 1 << 20
"""Read size when hashing files."""


@contextlib.contextmanager
def atomic_output_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary sibling directory; rename it to `final` only if the block succeeds.

    On any error the temporary directory is removed, so no partial output survives. An existing `final` is
    replaced (Snakemake removes stale outputs itself; a manual rerun should behave the same way).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_parquet(df: pl.DataFrame, path: str | os.PathLike) -> None:
    """Write one shard with fixed settings (no statistics that depend on the writer's run)."""
    df.write_parquet(path, compression=PARQUET_COMPRESSION, statistics=False)


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(HASH_BLOCK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_json(obj) -> str:
    """Hash of a JSON-serialisable object with sorted keys (stable across runs)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def write_json(obj, path: str | os.PathLike) -> None:
    Path(path).write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.parquet"
