"""Reading a source in its native layout, row by row, with errors that name the file, the row and the field.

Readers yield `NativeRow`s (file, 0-based row within the file, the row as plain Python values):
- `parquet_rows`: Parquet as `datasets` saves a hub split, nested fields as published (structs, lists); only
  the named columns are read (a nested path such as `document.summary.text` reads just that leaf, which matters
  for NarrativeQA whose rows also embed whole books);
- `csv_rows`: a CSV file with a header, every column read as text;
- `json_array_rows`: one JSON array of objects;
- `jsonl_rows`: one JSON object per line.
Text from bytes is checked to be UTF-8; a bad byte names the row and the field it is in.

Field accessors (`text`, `texts`, `integer`, `items`, ...) take a path such as `answers.input_text` or
`answers[0].text` and raise a DataError naming it when the field is missing, of the wrong type or empty.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from ga.data.contracts import DataError

PARQUET_BATCH_ROWS = 4096
"""Rows per Parquet batch while reading (bounds memory; never changes what is read)."""

_MISSING = object()
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


@dataclass(frozen=True)
class NativeRow:
    """One row of a source file in its native layout."""

    file: str
    row: int
    data: dict


# ---------------------------------------------------------------- field access
def _parts(path: str) -> list[str | int]:
    return [name if name else int(index) for name, index in _PATH_PART.findall(path)]


def value(row: NativeRow, path: str) -> Any:
    """The value at `path` (dotted keys and [i] indices); a DataError names the path when it is absent or null."""
    current: Any = row.data
    for part in _parts(path):
        if isinstance(part, int):
            if not isinstance(current, list) or part >= len(current):
                raise DataError(
                    row.file,
                    row.row,
                    path,
                    "missing (list too short)"
                    if isinstance(current, list)
                    else f"expected a list, got {_describe(current)}",
                )
            current = current[part]
        else:
            if not isinstance(current, dict):
                raise DataError(row.file, row.row, path, f"expected an object, got {_describe(current)}")
            current = current.get(part, _MISSING)
            if current is _MISSING:
                raise DataError(row.file, row.row, path, "missing field")
        if current is None:
            raise DataError(row.file, row.row, path, "missing (null)")
    return current


def _describe(item: Any) -> str:
    return f"{type(item).__name__} {item!r:.80}"


def _check_text(row: NativeRow, path: str, item: Any) -> str:
    if not isinstance(item, str):
        raise DataError(row.file, row.row, path, f"expected a string, got {_describe(item)}")
    if not item.strip():
        raise DataError(row.file, row.row, path, "empty string")
    return item


def text(row: NativeRow, path: str) -> str:
    """A non-blank string."""
    return _check_text(row, path, value(row, path))


def strings(row: NativeRow, path: str) -> list[str]:
    """A list of strings (possibly empty, items possibly blank): for lists a filter inspects itself."""
    items_ = items(row, path)
    for index, item in enumerate(items_):
        if not isinstance(item, str):
            raise DataError(row.file, row.row, f"{path}[{index}]", f"expected a string, got {_describe(item)}")
    return items_


def texts(row: NativeRow, path: str) -> list[str]:
    """A non-empty list of non-blank strings."""
    items_ = items(row, path)
    if not items_:
        raise DataError(row.file, row.row, path, "empty list")
    return [_check_text(row, f"{path}[{index}]", item) for index, item in enumerate(items_)]


def first_text(row: NativeRow, path: str) -> str:
    """The first item of a non-empty list, a non-blank string (the other items are not inspected)."""
    if not items(row, path):
        raise DataError(row.file, row.row, path, "empty list")
    return text(row, f"{path}[0]")


def items(row: NativeRow, path: str) -> list:
    """A list."""
    item = value(row, path)
    if not isinstance(item, list):
        raise DataError(row.file, row.row, path, f"expected a list, got {_describe(item)}")
    return item


def integer(row: NativeRow, path: str) -> int:
    item = value(row, path)
    if isinstance(item, bool) or not isinstance(item, int):
        raise DataError(row.file, row.row, path, f"expected an integer, got {_describe(item)}")
    return item


def integers(row: NativeRow, path: str) -> list[int]:
    items_ = items(row, path)
    for index, item in enumerate(items_):
        if isinstance(item, bool) or not isinstance(item, int):
            raise DataError(row.file, row.row, f"{path}[{index}]", f"expected an integer, got {_describe(item)}")
    return items_


# ---------------------------------------------------------------- invalid UTF-8
def _invalid_utf8_path(item: Any, path: str = "") -> str | None:
    """Path of the first string holding undecodable bytes (decoded with surrogateescape), or None."""
    if isinstance(item, str):
        return path if any("\udc80" <= ch <= "\udcff" for ch in item) else None
    if isinstance(item, dict):
        for key, child in item.items():
            found = _invalid_utf8_path(child, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    if isinstance(item, list):
        for index, child in enumerate(item):
            found = _invalid_utf8_path(child, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _decode(data: bytes) -> str | None:
    """The text, or None when it is not valid UTF-8 (the caller then locates the bad field)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


# ---------------------------------------------------------------- readers
def parquet_rows(path: str | Path, columns: Sequence[str]) -> Iterator[NativeRow]:
    """Rows of a Parquet file, reading only `columns` (dotted paths select nested leaves)."""
    file = str(path)
    try:
        parquet = pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises several types for unreadable files
        raise DataError(file, None, None, f"not a readable Parquet file: {err}") from None
    present = set(parquet.schema_arrow.names)
    for column in columns:
        if column.split(".", 1)[0] not in present:
            raise DataError(file, None, column, f"missing column (the file has {sorted(present)})")
    start = 0
    for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=list(columns)):
        try:
            rows = batch.to_pylist()
        except UnicodeDecodeError:
            _raise_invalid_parquet_utf8(batch, file, start)
        for index, data in enumerate(rows):
            yield NativeRow(file, start + index, data)
        start += batch.num_rows


def _raise_invalid_parquet_utf8(batch, file: str, start: int) -> None:
    for index in range(batch.num_rows):
        for name in batch.schema.names:
            try:
                batch.column(name).slice(index, 1).to_pylist()
            except UnicodeDecodeError as err:
                raise DataError(file, start + index, name, f"invalid UTF-8 ({err.reason})") from None
    raise DataError(file, start, None, "invalid UTF-8")


def csv_rows(path: str | Path, columns: Sequence[str]) -> Iterator[NativeRow]:
    """Rows of a CSV file with a header (all fields as text; an empty field is missing)."""
    file, data = str(path), Path(path).read_bytes()
    if _decode(data) is None:
        _raise_invalid_csv_utf8(data, file)
    try:
        frame = pl.read_csv(io.BytesIO(data), infer_schema=False)
    except pl.exceptions.PolarsError as err:
        raise DataError(file, None, None, f"not a readable CSV file: {err}") from None
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise DataError(file, None, missing[0], f"missing column (the file has {frame.columns})")
    for index, data_row in enumerate(frame.select(columns).iter_rows(named=True)):
        yield NativeRow(file, index, data_row)


def _raise_invalid_csv_utf8(data: bytes, file: str) -> None:
    csv.field_size_limit(len(data) + 1)  # chapters are longer than the csv module's default field limit
    reader = csv.reader(io.StringIO(data.decode("utf-8", errors="surrogateescape"), newline=""))
    header = next(reader, [])
    if _invalid_utf8_path(header) is not None:
        raise DataError(file, None, None, "invalid UTF-8 in the header")
    for index, fields in enumerate(reader):
        found = _invalid_utf8_path(dict(zip(header, fields)))
        if found is not None:
            raise DataError(file, index, found, "invalid UTF-8")
    raise DataError(file, None, None, "invalid UTF-8")


def json_array_rows(path: str | Path) -> Iterator[NativeRow]:
    """Objects of a file holding one JSON array."""
    file, data = str(path), Path(path).read_bytes()
    decoded = _decode(data)
    try:
        array = json.loads(decoded if decoded is not None else data.decode("utf-8", errors="surrogateescape"))
    except json.JSONDecodeError as err:
        raise DataError(
            file,
            None,
            None,
            f"malformed JSON at line {err.lineno}, column {err.colno}: {err.msg}"
            + ("" if decoded is not None else " (and not valid UTF-8)"),
        ) from None
    if not isinstance(array, list):
        raise DataError(file, None, None, f"expected one JSON array, got {type(array).__name__}")
    for index, item in enumerate(array):
        if decoded is None:
            found = _invalid_utf8_path(item)
            if found is not None:
                raise DataError(file, index, found, "invalid UTF-8")
        if not isinstance(item, dict):
            raise DataError(file, index, None, f"expected a JSON object, got {type(item).__name__}")
        yield NativeRow(file, index, item)


def jsonl_rows(path: str | Path) -> Iterator[NativeRow]:
    """Objects of a file with one JSON object per line (row = line)."""
    file = str(path)
    with open(path, "rb") as handle:
        for index, line in enumerate(handle):
            decoded = _decode(line)
            if decoded is None:
                try:
                    found = _invalid_utf8_path(json.loads(line.decode("utf-8", errors="surrogateescape")))
                except json.JSONDecodeError:
                    found = None
                raise DataError(file, index, found, "invalid UTF-8")
            if not decoded.strip():
                raise DataError(file, index, None, "empty line (one JSON object per line expected)")
            try:
                item = json.loads(decoded)
            except json.JSONDecodeError as err:
                raise DataError(file, index, None, f"malformed JSON at character {err.colno}: {err.msg}") from None
            if not isinstance(item, dict):
                raise DataError(file, index, None, f"expected a JSON object, got {type(item).__name__}")
            yield NativeRow(file, index, item)
