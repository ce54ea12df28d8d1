"""Downloads of the instruction-tuning sources from the Hugging Face hub.

Each kind of source has exactly one network call, a small function taking what identifies the data:
- `load_hub_split(hub_id, config_name, revision, split)`: `datasets.load_dataset` for sources published as a
  loadable dataset (Parquet on the hub); `download_split` saves the split as one Parquet file in its native
  layout (the nested fields as published);
- `fetch_hub_file(hub_id, filename, revision, local_dir)`: `huggingface_hub.hf_hub_download` for sources read
  from single files (BookSum's CSV, LongAlpaca's JSON array, PwC's JSONL, MetaICL's per-task files).
The converters' `download` functions take the call as a parameter, so tests can stand in for the hub with local
files while everything around the call runs for real.

Downloads are cached under `cache_dir/<dataset>/<revision or "default-branch">/`; a cached file is reused.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ga.io import atomic_file

DEFAULT_BRANCH_DIR = "default-branch"
"""Cache folder of an unpinned revision (the default branch at the time of the first download)."""

LoadSplit = Callable[[str, "str | None", "str | None", str], Any]
FetchFile = Callable[[str, str, "str | None", Path], Path]


def load_hub_split(hub_id: str, config_name: str | None, revision: str | None, split: str):
    """One split of a hub dataset (`datasets.Dataset`), at `revision` (None: the default branch)."""
    import datasets

    return datasets.load_dataset(hub_id, config_name, split=split, revision=revision)


def fetch_hub_file(hub_id: str, filename: str, revision: str | None, local_dir: Path) -> Path:
    """One file of a hub dataset repository, at `revision` (None: the default branch), saved under `local_dir`."""
    from huggingface_hub import hf_hub_download

    return Path(
        hf_hub_download(repo_id=hub_id, filename=filename, repo_type="dataset", revision=revision, local_dir=local_dir)
    )


def cache_folder(cache_dir: str | Path, dataset: str, revision: str | None) -> Path:
    return Path(cache_dir) / dataset / (revision or DEFAULT_BRANCH_DIR)


def download_split(dataset: str, cfg, cache_dir: str | Path, load_split: LoadSplit = load_hub_split) -> Path:
    """`cfg.split` of the hub dataset `cfg.hub_id` (config `cfg.config_name`) as one Parquet file."""
    config_part = f"{cfg.config_name}-" if cfg.config_name else ""
    target = cache_folder(cache_dir, dataset, cfg.revision) / f"{config_part}{cfg.split}.parquet"
    if target.is_file():
        return target
    split = load_split(cfg.hub_id, cfg.config_name, cfg.revision, cfg.split)
    with atomic_file(target) as tmp:
        split.to_parquet(str(tmp))
    return target


def download_file(
    dataset: str, cfg, filename: str, cache_dir: str | Path, fetch_file: FetchFile = fetch_hub_file
) -> Path:
    """File `filename` of the hub repository `cfg.hub_id` at `cfg.revision`."""
    folder = cache_folder(cache_dir, dataset, cfg.revision)
    target = folder / filename
    if target.is_file():
        return target
    return Path(fetch_file(cfg.hub_id, filename, cfg.revision, folder))
