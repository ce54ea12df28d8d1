"""The paper's published knowledge-acquisition numbers (resources/paper/knowledge_qa.yaml) as a table.

`paper_knowledge_qa()`: one row per published cell, columns `model`, `benchmark`, `method` (names of
`ga.eval.knowledge.config.BENCHMARKS` / `METHODS`; the paper's "SFT" is `qa_finetuning`), `length` (k in tokens; null for the
closed-book methods, which never see the context), `f1` (in percent, as published) and `metric` (how the authors
scored: against the single shortest reference, unlike the standard max over references), so that a comparison with
this project's results can put the matching column next to them.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ga.data.contracts import DataError
from ga.eval.knowledge.config import BENCHMARKS, METHODS
from ga.io import read_yaml

PAPER_KNOWLEDGE_QA = Path(__file__).resolve().parents[3] / "resources" / "paper" / "knowledge_qa.yaml"
PAPER_COLUMNS = {
    "model": pl.Utf8,
    "benchmark": pl.Utf8,
    "method": pl.Utf8,
    "length": pl.Int64,
    "f1": pl.Float64,
    "metric": pl.Utf8,
}
_ENTRY_KEYS = {"model", "benchmark", "method", "f1"}


def _f1(value, file: str, row: int, column: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise DataError(file, row, column, f"expected an F1 in percent (0..100), got {value!r}")
    return float(value)


def paper_knowledge_qa(path: str | Path = PAPER_KNOWLEDGE_QA) -> pl.DataFrame:
    """The published cells, in file order (lengths ascending within an entry)."""
    file = str(path)
    data = read_yaml(path)
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("metric"), str)
        or not isinstance(data.get("results"), list)
    ):
        raise DataError(file, None, None, "expected a mapping with `metric` (text) and `results` (a list)")
    rows = []
    for index, entry in enumerate(data["results"]):
        if not isinstance(entry, dict) or set(entry) != _ENTRY_KEYS:
            raise DataError(file, index, None, f"expected exactly the keys {sorted(_ENTRY_KEYS)}, got {entry!r}")
        for key, allowed in (("benchmark", BENCHMARKS), ("method", METHODS)):
            if entry[key] not in allowed:
                raise DataError(file, index, key, f"{entry[key]!r} is not one of {list(allowed)}")
        cell = {
            "model": str(entry["model"]),
            "benchmark": entry["benchmark"],
            "method": entry["method"],
            "metric": data["metric"],
        }
        f1 = entry["f1"]
        if isinstance(f1, dict):
            for length in sorted(f1):
                if isinstance(length, bool) or not isinstance(length, int) or length < 1:
                    raise DataError(file, index, "f1", f"lengths must be positive integers, got {length!r}")
                rows.append({**cell, "length": length, "f1": _f1(f1[length], file, index, f"f1.{length}")})
        else:
            rows.append({**cell, "length": None, "f1": _f1(f1, file, index, "f1")})
    frame = pl.DataFrame(rows, schema=PAPER_COLUMNS)
    repeated = frame.filter(frame.select("model", "benchmark", "method", "length").is_duplicated())
    if repeated.height:
        raise DataError(file, None, None, f"cells given twice: {repeated.head(3).rows()}")
    return frame
