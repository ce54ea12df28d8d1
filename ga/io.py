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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from ga.errors import UnreadableFile

HASH_BLOCK_BYTES = 1 << 20
"""Read size when hashing files."""
NEW_FILE_MODE = 0o666
"""The mode a new file is created with before the umask applies (as open() does)."""


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
    pid_text = temp.name[len(_temp_prefix(target)) :].split("-", 1)[0]
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
    with contextlib.nullcontext() if replace else _lock(target):
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


def _umask() -> int:
    """The process's file mode creation mask, read without changing it (Linux reports it in /proc; elsewhere it can
    only be read by setting it, which is done once, at once restoring it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_file(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `target`; write it inside the block, and it replaces `target` on success.

    The file gets the mode an ordinary new file gets (0666 less the umask), whatever wrote it: some writers (safetensors)
    create private 0600 files, which colleagues sharing a run could not read."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{_temp_prefix(target)}{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        os.chmod(tmp, NEW_FILE_MODE & ~_umask())
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
    """Parsed JSON; a missing, unreadable or malformed file raises `UnreadableFile` naming it (a ValueError)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{path}: does not exist") from err
    except (OSError, UnicodeDecodeError) as err:
        raise UnreadableFile(f"{path}: cannot be read as text ({err.strerror or err})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise UnreadableFile(f"{path}: not valid JSON ({err})") from None


def write_yaml(obj: Any, path: str | os.PathLike, only_if_changed: bool = False) -> Path:
    return write_text(yaml.safe_dump(obj, sort_keys=False), path, only_if_changed=only_if_changed)


def read_yaml(path: str | os.PathLike) -> Any:
    """Parsed YAML (an empty file is an empty dict); a missing, unreadable or malformed file raises an error naming
    it (`UnreadableFile`, a ValueError, in one line: the problem and where)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{path}: does not exist") from err
    except (OSError, UnicodeDecodeError) as err:
        raise UnreadableFile(f"{path}: cannot be read as text ({getattr(err, 'strerror', None) or err})") from None
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise UnreadableFile(f"{path}: not valid YAML{where}: {problem}") from None


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
