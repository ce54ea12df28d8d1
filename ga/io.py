"""Files, written so that a reader never sees half of one: atomic files and folders, content hashes, JSON and YAML.

Every stage writes its outputs through these helpers. A file or folder is built under a temporary sibling name and
renamed into place only when complete, so a killed or failing run leaves no partial output behind (Snakemake, a
resumed run and a concurrent reader all rely on this).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterator

import yaml

HASH_BLOCK_BYTES = 1 << 20
"""Read size when hashing files."""


def _temp_prefix(target: Path) -> str:
    return f".{target.name}.tmp-"


@contextlib.contextmanager
def _lock(target: Path) -> Iterator[None]:
    """Serialise builders of `target` across processes; the OS drops the lock if its holder dies."""
    with open(target.parent / f".{target.name}.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _builder_alive(temp: Path, target: Path) -> bool:
    """Whether the process that named temporary folder `temp` (`.<name>.tmp-<pid>-<id>`) still runs here."""
    pid_text = temp.name[len(_temp_prefix(target)):].split("-", 1)[0]
    if not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike, replace: bool = True) -> Iterator[Path]:
    """Yield an empty temporary folder next to `target`; on success it becomes `target`, on error it is removed.

    replace=True (a stage's output): an existing `target` is replaced. Leftovers of killed builds (temporary folders
    whose process is gone) are removed.
    replace=False (a shared cache): builders of the same target take turns under a lock file next to it, and if
    `target` exists when the build finishes (another process finished first) the new build is discarded.
    """
    target = Path(target).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    with (contextlib.nullcontext() if replace else _lock(target)):
        for stale in target.parent.glob(_temp_prefix(target) + "*"):
            if not _builder_alive(stale, target):
                shutil.rmtree(stale, ignore_errors=True)
        tmp = target.parent / f"{_temp_prefix(target)}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            yield tmp
            if target.exists() and replace:
                old = target.parent / f"{_temp_prefix(target)}{os.getpid()}-old-{uuid.uuid4().hex[:8]}"
                target.rename(old)
                tmp.rename(target)
                shutil.rmtree(old, ignore_errors=True)
            elif target.exists():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.rename(target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


@contextlib.contextmanager
def atomic_file(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `target`; write it inside the block, and it replaces `target` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{_temp_prefix(target)}{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(text: str, path: str | os.PathLike, only_if_changed: bool = False) -> Path:
    """Write `text` atomically; with `only_if_changed` an identical file is left untouched (keeps its mtime)."""
    path = Path(path)
    if only_if_changed and path.is_file() and path.read_text() == text:
        return path
    with atomic_file(path) as tmp:
        tmp.write_text(text)
    return path


def write_json(obj: Any, path: str | os.PathLike, sort_keys: bool = True) -> Path:
    return write_text(json.dumps(obj, indent=2, sort_keys=sort_keys) + "\n", path)


def read_json(path: str | os.PathLike) -> Any:
    """Parsed JSON, with an error naming the file."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{path}: does not exist") from err
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err


def write_yaml(obj: Any, path: str | os.PathLike, only_if_changed: bool = False) -> Path:
    return write_text(yaml.safe_dump(obj, sort_keys=False), path, only_if_changed=only_if_changed)


def read_yaml(path: str | os.PathLike) -> Any:
    """Parsed YAML (an empty file is an empty dict), with an error naming the file."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{path}: does not exist") from err
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({err})") from err


def copy_file(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    with atomic_file(target) as tmp:
        shutil.copyfile(source, tmp)
    return Path(target)


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(HASH_BLOCK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_json(obj: Any) -> str:
    """Hash of a JSON-serialisable object with sorted keys (stable across runs and processes)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
