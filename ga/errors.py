"""Mistakes a user can fix, and how every `ga` command reports them: one line on stderr, naming the file, row or key,
exit status 1, no traceback.

Every such mistake raises a subclass of `UserError`, all defined here: a config key (`ConfigError`), a row of a data
file (`DataError`), a base model (`BaseModelError`), a file that cannot be read at all (`UnreadableFile`), a prepared
split that lacks a file (`SplitFormatError`), arguments that do not fit together (`UsageError`). The commands' one
`except` catches `UserError` and an OSError that names a file (`is_user_error`). Imports nothing but the standard
library: the command line imports it before it knows which command runs, and the lowest layer imports it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


class UserError(Exception):
    """A mistake in the user's config, files or arguments; its message names the file, row or key, and a command
    reports it in one line (`report`)."""


class ConfigError(UserError, ValueError):
    """A config value or key that is not allowed; the message starts with the dotted key (or lists several)."""


class DataError(UserError, ValueError):
    """Bad input data; the message names the file, the row (0-based within the file) and the column."""

    def __init__(self, file: str, row: int | str | None, column: str | None, problem: str):
        self.file, self.row, self.column, self.problem = str(file), row, column, problem
        where = [f"row {row}"] if row is not None else []
        where += [f"column {column!r}"] if column is not None else []
        super().__init__(f"{self.file}: {', '.join(where) + ': ' if where else ''}{problem}")


class BaseModelError(UserError, RuntimeError):
    """A base model could not be loaded, fetched or built; the message names the offending value."""


class UnreadableFile(UserError, ValueError):
    """An input file that does not exist, is not a file of the expected kind, or cannot be parsed; the message starts
    with the file's path."""


class SplitFormatError(UserError, FileNotFoundError):
    """A split folder lacks what the lazy loader reads (its manifest or the Arrow copies of its shards)."""


class UsageError(UserError, ValueError):
    """A command given things that do not fit together (an adapter made for another base model, a generator trained
    for another one); the message names them."""


REPORTED_ERRORS: tuple[type[BaseException], ...] = (UserError, OSError)
"""What a command's one `except` catches; `is_user_error` then tells a user's mistake from a failure inside."""


def is_user_error(err: BaseException) -> bool:
    """Whether `err` is a user's mistake: a `UserError`, or an OSError that names a file (a missing or unreadable
    path, a full disk), not one a library raises inside; a missing file always counts."""
    if isinstance(err, UserError):
        return True
    if isinstance(err, OSError) and not isinstance(err, FileNotFoundError):
        return err.filename is not None
    return isinstance(err, OSError)


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
def reading(
    path: str | os.PathLike, what: str = "file", library_errors: tuple[type[BaseException], ...] = ()
) -> Iterator[None]:
    """Inside, a failure to open or parse `path` becomes one `UnreadableFile` naming it: the file system's and the
    standard library's errors (OSError, ValueError: bad JSON, bad UTF-8) and `library_errors`, the error bases of
    the library the caller reads with (Arrow's, Polars'). A `UserError` already names what is wrong and passes
    through."""
    try:
        yield
    except FileNotFoundError:
        raise UnreadableFile(f"{path}: does not exist") from None
    except (OSError, ValueError, *library_errors) as err:
        if isinstance(err, UserError):
            raise
        raise UnreadableFile(f"{path}: not a readable {what} ({one_line(err)})") from None
