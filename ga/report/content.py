"""What the report page is made of, as plain values: tables, figures and sections (html.py renders them).

A cell that has no value (a number the paper did not publish, a metric a job did not measure) is None and is shown
as MISSING, never as a made-up number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

MISSING = "—"
"""How a cell without a value is shown."""
LARGE = 1e5
"""Numbers at or above this (FLOPs, floats stored) are shown in scientific notation."""


@dataclass
class Table:
    columns: tuple[str, ...]
    rows: list[tuple]
    caption: str = ""
    digits: int = 1
    """Decimals of non-integer numbers below LARGE."""


@dataclass
class Figure:
    png: Path
    caption: str


@dataclass
class Section:
    title: str
    intro: str = ""
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Why something is not shown (the stage did not run, the paper has no such numbers)."""
    preformatted: str = ""
    """Text shown as is (the config)."""


def format_cell(value, digits: int = 1) -> str:
    """A table cell as text: MISSING for None or NaN, scientific notation for large numbers."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= LARGE else str(value)
    if isinstance(value, float):
        if abs(value) >= LARGE:
            return f"{value:.3g}"
        if value != 0 and abs(value) < 10**-digits:
            return f"{value:.2g}"
        return f"{value:.{digits}f}"
    return str(value)
