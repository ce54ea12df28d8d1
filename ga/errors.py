"""Mistakes a user can fix, and how every `ga` command reports them: one line on stderr, naming the file, row or key,
exit status 1, no traceback.

The exception types live where their errors arise (a config key: `ga.section.ConfigError`; a row of a data file:
`ga.data.contracts.DataError`; a base model: `ga.base.BaseModelError`; a file that cannot be read at all:
`UnreadableFile`, below); `user_errors()` gathers them for the commands' one `except`. Kept free of heavy imports: the
command line imports it before it knows which command runs.
"""
from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator


class UnreadableFile(ValueError):
    """An input file that does not exist, is not a file of the expected kind, or cannot be parsed; the message starts
    with the file's path."""


class UsageError(ValueError):
    """A command given things that do not fit together (an adapter made for another base model, a generator trained
    for another one); the message names them."""


def user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean a mistake in the user's config, files or arguments (reported in one line)."""
    from ga.base import BaseModelError
    from ga.data.contracts import DataError
    from ga.section import ConfigError

    return ConfigError, DataError, BaseModelError, UnreadableFile, UsageError, OSError


def is_user_error(err: BaseException) -> bool:
    """Whether `err` is a user's mistake: one of `user_errors()`, where an OSError counts only when it names a file
    (a missing or unreadable path, a full disk), not when a library fails inside."""
    if isinstance(err, OSError) and not isinstance(err, FileNotFoundError):
        return err.filename is not None
    return isinstance(err, user_errors())


def one_line(err: BaseException) -> str:
    """The error's message as one line: an OSError as `path: reason`, inner line breaks folded into `; `."""
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        return f"{err.filename}: {err.strerror.lower()}"
    text = str(err).strip() or type(err).__name__
    folded = ""
    for line in filter(None, (line.strip() for line in text.splitlines())):
        folded += (" " if not folded or folded.endswith(":") else "; ") + line
    return folded.strip()


def report(command: str, err: BaseException) -> int:
    """Print `ga <command>: <one line>` on stderr; the exit status for a user's mistake."""
    print(f"ga {command}: {one_line(err)}", file=sys.stderr)
    return 1


@contextlib.contextmanager
def reading(path: str | os.PathLike, what: str = "file") -> Iterator[None]:
    """Inside, a failure to open or parse `path` (the file system's, the standard library's, Arrow's or Polars' own
    errors) becomes one `UnreadableFile` naming it; errors that already name what is wrong pass through."""
    try:
        yield
    except FileNotFoundError:
        raise UnreadableFile(f"{path}: does not exist") from None
    except _read_errors() as err:
        if isinstance(err, _named_errors()):
            raise
        raise UnreadableFile(f"{path}: not a readable {what} ({one_line(err)})") from None


def _named_errors() -> tuple[type[BaseException], ...]:
    """Errors that already name the file, row or key (loaded ones only: an error of a module not imported cannot
    occur)."""
    from ga.section import ConfigError

    named: list[type[BaseException]] = [UnreadableFile, UsageError, ConfigError]
    if "ga.data.contracts" in sys.modules:
        named.append(sys.modules["ga.data.contracts"].DataError)
    return tuple(named)


def _read_errors() -> tuple[type[BaseException], ...]:
    """What reading a file can raise: OSError, ValueError (bad JSON, bad UTF-8, Arrow's ArrowInvalid) and the error
    bases of the table libraries, where they are loaded (an error type of a library not imported cannot occur)."""
    errors: list[type[BaseException]] = [OSError, ValueError]
    if "pyarrow" in sys.modules:
        errors.append(sys.modules["pyarrow"].lib.ArrowException)
    if "polars" in sys.modules:
        errors.append(sys.modules["polars"].exceptions.PolarsError)
    return tuple(errors)
