"""Where the user's commands write. A path a user typed is not a stage's output: it is never replaced, emptied or
overwritten unless the user asks (`--force`), never when it is one of the command's own inputs, and nothing the
command did not write is ever deleted. Both checks run before any model is loaded, so a mistake costs no time.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from ga.errors import UsageError

TEMP_PREFIX = ".ga-tmp-"
"""Name prefix of the temporary folder an output folder's files are built in (inside it), removed afterwards."""


def _same_file(path: Path, other: Path) -> bool:
    """Whether both name one file (also through symbolic or hard links)."""
    try:
        return os.path.samefile(path, other)
    except OSError:
        return False


def check_new_file(out: str | Path, inputs: Iterable[str | Path], force: bool, example: str) -> None:
    """A `UsageError` naming `out` unless the command may write the file `out`: not a folder (the message suggests
    the file `example` in it), not one of `inputs` (even with `force`), not an existing file unless `force`, and in a
    folder it can write in."""
    out = Path(out)
    if out.is_dir():
        raise UsageError(f"{out}: is a folder; --out names the file to write, e.g. {os.path.join(out, example)}")
    for given in inputs:
        if _same_file(out, Path(given)):
            raise UsageError(f"{out}: is also an input ({given}); --out must name another file")
    if (out.exists() or out.is_symlink()) and not force:
        raise UsageError(f"{out}: exists; pass --force to replace it")
    _check_writable(out)


def check_output_folder(out: str | Path, names: Iterable[str], inputs: Iterable[str | Path], force: bool) -> None:
    """A `UsageError` naming `out` unless the command may write the files `names` into the folder `out`: a new or
    empty folder, or (with `force`) an existing one, where only those files are replaced; never over an input."""
    out, names = Path(out), list(names)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder; --out names a folder to write {' and '.join(names)} in")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UsageError(
            f"{out}: folder exists and is not empty; pass --force to write {' and '.join(names)} into "
            "it (its other files are kept)"
        )
    for name in names:
        for given in inputs:
            if _same_file(out / name, Path(given)):
                raise UsageError(f"{out / name}: is also an input ({given}); choose another --out")
    _check_writable(out / names[0])


def _check_writable(path: Path) -> None:
    """A `UsageError` unless `path` could be created: its nearest existing ancestor is a folder this user can write
    in (missing folders between them are created)."""
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"{path}: cannot be created ({ancestor} is not a folder)")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"{path}: cannot be created (no permission to write in {ancestor})")


@contextlib.contextmanager
def files_into_folder(out: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder inside `out` (created if missing); on success each file written there
    replaces the file of the same name in `out`, atomically, and nothing else in `out` is touched. On error the
    temporary folder goes, and `out` too if this call created it and it is still empty."""
    out = Path(os.path.abspath(out))
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    build = out / f"{TEMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    build.mkdir()
    try:
        yield build
        for written in sorted(build.iterdir()):
            os.replace(written, out / written.name)
    finally:
        shutil.rmtree(build, ignore_errors=True)
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
