"""Progress of a long command over a known number of bytes: a bar on a terminal, log lines anywhere else.

A bar redraws one line, which a log file (a batch job's stderr, `2> log`, a pipe) would fill with carriage returns, or
which tqdm leaves out altogether when stderr is not a terminal; so off a terminal progress is logged as plain lines:
first an estimate of the whole job's time, measured on its first block, then a line at every tenth of the work or
every few minutes, whichever comes first.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

LOG_EVERY_FRACTION = 0.1
"""A log line each time another tenth of the bytes is done."""
LOG_EVERY_SECONDS = 300.0
"""... and at least every five minutes, so that a slow job shows it is alive."""
LOG_FROM_BYTES = 100_000
"""Smaller inputs log nothing (their closing line or error is all the command prints): about two minutes of the
embedded SmolLM2 on one CPU core, seconds on a GPU. A size, not a time, so that what a command prints does not
depend on how busy the machine is."""
SECONDS_PER_MINUTE, SECONDS_PER_HOUR = 60, 3600
BYTE_UNITS = ("B", "KB", "MB", "GB", "TB")
BYTES_PER_UNIT = 1000


def format_bytes(count: float) -> str:
    """`count` bytes in the largest decimal unit that keeps it >= 1: 980 B, 5.2 MB."""
    unit = 0
    while count >= BYTES_PER_UNIT and unit < len(BYTE_UNITS) - 1:
        count, unit = count / BYTES_PER_UNIT, unit + 1
    return f"{count:.0f} {BYTE_UNITS[unit]}" if unit == 0 else f"{count:.1f} {BYTE_UNITS[unit]}"


def format_duration(seconds: float) -> str:
    """A duration to the unit that matters: 12s, 4m10s, 1h30m."""
    seconds = round(seconds)
    if seconds < SECONDS_PER_MINUTE:
        return f"{seconds}s"
    if seconds < SECONDS_PER_HOUR:
        return f"{seconds // SECONDS_PER_MINUTE}m{seconds % SECONDS_PER_MINUTE:02d}s"
    return f"{seconds // SECONDS_PER_HOUR}h{seconds % SECONDS_PER_HOUR // SECONDS_PER_MINUTE:02d}m"


class ProgressLog:
    """Log lines for a job over `total_bytes` that reports bytes as it takes them up (`update(n)`, as a tqdm bar's
    `update`): the bytes of one call are taken to be done when the next call comes, so the rate is measured on work
    finished. Nothing is printed before the first block is done (a small job prints nothing; a mistake found in the
    first block stays the only line)."""

    def __init__(
        self,
        what: str,
        total_bytes: int,
        stream: TextIO | None = None,
        every_fraction: float = LOG_EVERY_FRACTION,
        every_seconds: float = LOG_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        log_from_bytes: int = LOG_FROM_BYTES,
    ):
        self.what, self.total, self.stream = what, total_bytes, stream or sys.stderr
        self.every_fraction, self.every_seconds, self.clock = every_fraction, every_seconds, clock
        self.silent = total_bytes < log_from_bytes
        self.start = self.last_line = clock()
        self.taken = self.done = 0
        self.next_fraction = every_fraction
        self.estimated = False

    def _print(self, text: str) -> None:
        print(f"{self.what}: {text}", file=self.stream, flush=True)
        self.last_line = self.clock()

    def update(self, count: int) -> None:
        self.done, self.taken = self.taken, self.taken + count
        now = self.clock()
        elapsed = now - self.start
        if self.silent or self.done == 0 or elapsed <= 0:
            return
        remaining = elapsed * (self.total - self.done) / self.done
        if not self.estimated:
            self.estimated = True
            self._print(
                f"{format_bytes(self.total)} to read; about {format_duration(elapsed + remaining)} in all "
                f"(measured on the first {format_bytes(self.done)}, {format_duration(elapsed)})"
            )
        elif self.done >= self.next_fraction * self.total or now - self.last_line >= self.every_seconds:
            self._print(
                f"{self.done / self.total:.0%} ({format_bytes(self.done)} of {format_bytes(self.total)}), "
                f"{format_duration(elapsed)} elapsed, about {format_duration(remaining)} left"
            )
        while self.next_fraction * self.total <= self.done:
            self.next_fraction += self.every_fraction

    def __enter__(self) -> ProgressLog:
        return self

    def __exit__(self, *exc) -> None:
        """The command prints its own closing line."""


def byte_progress(what: str, total_bytes: int):
    """A context manager with `update(n)`: tqdm's bar when stderr is a terminal, else a `ProgressLog` on stderr."""
    if sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(total=total_bytes, unit="B", unit_scale=True, desc=what)
    return ProgressLog(what, total_bytes)
