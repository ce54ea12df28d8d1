"""Document sources and the documents stage.

Registry: `SOURCES[name](settings) -> iterator of (origin, row_offset, raw-documents DataFrame)` chunks, where
`origin` names the file (or stream) the rows come from so errors can name file and row. Every chunk is checked
against the raw-document contract. `write_documents` draws documents from the configured source until the token
budget of each sub-source (mixture share x token_budget, counted with the base tokenizer) is used up, and writes
them as Parquet shards plus manifest.json.

- `embedded`: `ga.data.embedded` (stdlib documentation prose + fictional entities), shuffled by a seeded hash.
- `local`: the user's .jsonl / .parquet / .txt files (one document per JSON line / row / text file).
- `slimpajama`: HF `cerebras/SlimPajama-627B`, streamed with `datasets.load_dataset(..., streaming=True)` at a
  pinned revision; `slimpajama.dataset` may instead be a local folder laid out like the hub repository.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
from tqdm import tqdm

from ga.data import contracts
from ga.data.config import PretrainDataConfig
from ga.data.contracts import RAW_DOCUMENT_COLUMNS, RAW_DOCUMENTS, DataError, validate
from ga.data.parquet import shard_name, write_parquet
from ga.io import atomic_dir, sha256_file, sha256_json, write_json

Chunk = tuple[str, int, pl.DataFrame]
LOCAL_SOURCE_NAME = "local"
LOCAL_SUFFIXES = (".jsonl", ".parquet", ".txt")
RAW_SCHEMA = {"doc_id": pl.Utf8, "source": pl.Utf8, "text": pl.Utf8, "metadata": pl.Utf8}


def _frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=RAW_SCHEMA)


def hash_order_key(seed: int, doc_id: str, purpose: str) -> int:
    """A seeded pseudo-random, platform-independent 64-bit key; `purpose` keeps independent uses uncorrelated
    (the order in which the embedded corpus is sampled must not decide which documents are held out)."""
    return int.from_bytes(hashlib.blake2b(f"{purpose}:{seed}:{doc_id}".encode(), digest_size=8).digest(), "big")


# ---------------------------------------------------------------- embedded
def embedded_chunks(settings: PretrainDataConfig) -> Iterator[Chunk]:
    from ga.data.embedded import fictional_entity_docs, python_docs

    cfg = settings.embedded
    docs = (python_docs() if cfg.python_docs else []) + fictional_entity_docs(
        cfg.entities, cfg.passages_per_entity, settings.seed
    )
    docs.sort(key=lambda d: (hash_order_key(settings.seed, d["doc_id"], "order"), d["doc_id"]))
    for start in range(0, len(docs), settings.tokenize_batch_documents):
        yield "embedded", start, _frame(docs[start : start + settings.tokenize_batch_documents])


# ---------------------------------------------------------------- local files
def local_files(paths: tuple[str, ...]) -> list[Path]:
    files = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in LOCAL_SUFFIXES)
        elif path.is_file():
            if path.suffix not in LOCAL_SUFFIXES:
                raise DataError(str(path), None, None, f"unsupported file type; use one of {LOCAL_SUFFIXES}")
            files.append(path)
        else:
            raise DataError(str(path), None, None, "no such file or folder")
    if not files:
        raise DataError(",".join(paths) or "<no paths>", None, None, "no .jsonl/.parquet/.txt documents found")
    return files


def _check_record(record, file: str, row: int, default_id: str) -> dict:
    """One local record -> raw-document row; wrong keys or types name file, row and column."""
    if not isinstance(record, dict):
        raise DataError(file, row, None, f"expected a JSON object, got {type(record).__name__}")
    allowed = set(RAW_DOCUMENT_COLUMNS)
    extra = sorted(set(record) - allowed)
    if extra:
        raise DataError(file, row, extra[0], f"unexpected column(s) {extra}; allowed: {sorted(allowed)}")
    if "text" not in record:
        raise DataError(file, row, "text", "missing required column")
    for column in RAW_DOCUMENT_COLUMNS:
        value = record.get(column)
        if column == "metadata" and isinstance(value, dict):
            record = {**record, "metadata": json.dumps(value, sort_keys=True)}
        elif value is not None and not isinstance(value, str):
            raise DataError(file, row, column, f"expected a string, got {type(value).__name__} {value!r:.80}")
    return {
        "doc_id": record.get("doc_id") or default_id,
        "source": record.get("source") or LOCAL_SOURCE_NAME,
        "text": record["text"],
        "metadata": record.get("metadata"),
    }


def _bad_utf8_column(line: bytes) -> str | None:
    """Which JSON string field of a line holds invalid UTF-8 (decoded with surrogateescape to find it)."""
    try:
        record = json.loads(line.decode("utf-8", errors="surrogateescape"))
    except json.JSONDecodeError:
        return None
    if isinstance(record, dict):
        for key, value in record.items():
            if isinstance(value, str) and any("\udc80" <= ch <= "\udcff" for ch in value):
                return key
    return None


def _jsonl_chunks(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    file, rows, start = str(path), [], 0
    with open(path, "rb") as handle:
        for row, line in enumerate(handle):
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(file, row, _bad_utf8_column(line), f"invalid UTF-8 at byte {err.start}") from None
            if not text.strip():
                raise DataError(file, row, None, "empty line (one JSON object per line expected)")
            try:
                record = json.loads(text)
            except json.JSONDecodeError as err:
                raise DataError(file, row, None, f"malformed JSON at character {err.colno}: {err.msg}") from None
            rows.append(_check_record(record, file, row, f"{file}:{row}"))
            if len(rows) == chunk_rows:
                yield file, start, _frame(rows)
                rows, start = [], row + 1
    if rows:
        yield file, start, _frame(rows)


def _parquet_chunks(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    file = str(path)
    try:
        parquet = pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises several types for unreadable files
        raise DataError(file, None, None, f"not a readable Parquet file: {err}") from None
    columns = parquet.schema_arrow.names
    extra = sorted(set(columns) - set(RAW_DOCUMENT_COLUMNS))
    if extra:
        raise DataError(file, 0, extra[0], f"unexpected column(s) {extra}; allowed: {list(RAW_DOCUMENT_COLUMNS)}")
    if "text" not in columns:
        raise DataError(file, 0, "text", "missing required column")
    start = 0
    for batch in parquet.iter_batches(batch_size=chunk_rows):
        try:
            df = pl.from_arrow(batch)
        except Exception as err:  # e.g. invalid UTF-8 inside a string column
            raise DataError(
                file, start, None, f"unreadable rows {start}..{start + batch.num_rows - 1}: {err}"
            ) from None
        for column in df.columns:
            if df.schema[column] != pl.Utf8 and not (
                column in ("metadata", "doc_id", "source") and df.schema[column] == pl.Null
            ):
                first = df.select(pl.col(column).is_not_null().arg_max()).item()
                raise DataError(file, start + (first or 0), column, f"expected strings, got {df.schema[column]}")
        if "doc_id" not in df.columns:
            df = df.with_columns(
                pl.format("{}:{}", pl.lit(file), pl.int_range(start, start + df.height)).alias("doc_id")
            )
        exprs = {"source": pl.lit(LOCAL_SOURCE_NAME), "metadata": pl.lit(None, dtype=pl.Utf8)}
        df = df.with_columns([v.alias(k) for k, v in exprs.items() if k not in df.columns])
        df = df.with_columns(
            pl.col("doc_id").fill_null(pl.format("{}:{}", pl.lit(file), pl.int_range(start, start + df.height))),
            pl.col("source").fill_null(LOCAL_SOURCE_NAME),
        ).cast(RAW_SCHEMA)
        yield file, start, df.select(RAW_DOCUMENT_COLUMNS)
        start += batch.num_rows


def _text_chunks(path: Path) -> Iterator[Chunk]:
    file, data = str(path), path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n")
        raise DataError(file, line, "text", f"invalid UTF-8 at byte {err.start} (row = line)") from None
    if "\0" in text:  # valid UTF-8 can still be binary data; no text document holds a NUL character
        line = text[: text.index("\0")].count("\n")
        raise DataError(file, line, "text", f"NUL byte at byte {data.index(0)}: a binary file, not text (row = line)")
    if not text.strip():
        return
    yield file, 0, _frame([{"doc_id": file, "source": LOCAL_SOURCE_NAME, "text": text, "metadata": None}])


def local_chunks(settings: PretrainDataConfig) -> Iterator[Chunk]:
    for path in local_files(settings.local.paths):
        if path.suffix == ".jsonl":
            chunks = _jsonl_chunks(path, settings.tokenize_batch_documents)
        elif path.suffix == ".parquet":
            chunks = _parquet_chunks(path, settings.tokenize_batch_documents)
        else:
            chunks = _text_chunks(path)
        documents = 0
        for chunk in chunks:
            documents += chunk[2].height
            yield chunk
        if documents == 0:  # a file given (or found) as a source of documents holds none: named, not skipped
            raise DataError(str(path), None, None, "empty file: no documents")


# ---------------------------------------------------------------- SlimPajama
def slimpajama_records(dataset: str, revision: str | None, split: str):
    """SlimPajama's native records ({"text", "meta": {"redpajama_set_name"}}), streamed in file order."""
    import datasets

    is_local = os.path.isdir(dataset)
    return datasets.load_dataset(dataset, split=split, streaming=True, revision=None if is_local else revision)


def slimpajama_chunks(settings: PretrainDataConfig) -> Iterator[Chunk]:
    cfg = settings.slimpajama
    origin = f"{cfg.dataset}@{cfg.revision or 'local'}:{cfg.split}"
    rows, start = [], 0
    for row, record in enumerate(slimpajama_records(cfg.dataset, cfg.revision, cfg.split)):
        text, meta = record.get("text"), record.get("meta")
        if not isinstance(text, str):
            raise DataError(origin, row, "text", f"expected a string, got {type(text).__name__}")
        if not isinstance(meta, dict) or not isinstance(meta.get("redpajama_set_name"), str):
            raise DataError(origin, row, "meta.redpajama_set_name", f"missing or not a string: {meta!r:.120}")
        rows.append(
            {
                "doc_id": f"slimpajama/{cfg.split}/{row:012d}",
                "source": meta["redpajama_set_name"],
                "text": text,
                "metadata": json.dumps(meta, sort_keys=True),
            }
        )
        if len(rows) == settings.tokenize_batch_documents:
            yield origin, start, _frame(rows)
            rows, start = [], row + 1
    if rows:
        yield origin, start, _frame(rows)


SOURCES: dict[str, Callable[[PretrainDataConfig], Iterator[Chunk]]] = {
    "embedded": embedded_chunks,
    "local": local_chunks,
    "slimpajama": slimpajama_chunks,
}


# ---------------------------------------------------------------- budgeted sampling + writing
class TokenBudget:
    """Per-sub-source token budgets: shares of the total (or unlimited); a document is taken while its source
    still has budget left (so a source may overshoot by less than one document)."""

    def __init__(self, total: int | None, mixture: dict[str, float] | None):
        self.total, self.mixture = total, mixture
        if mixture is not None and total is not None:
            weight = sum(mixture.values())
            self.limits = {name: round(total * w / weight) for name, w in mixture.items()}
        else:
            self.limits = None
        self.used: dict[str, int] = {}

    def wants(self, source: str) -> bool:
        used = self.used.get(source, 0)
        if self.mixture is not None and source not in self.mixture:
            return False
        if self.total is None:
            return True
        if self.limits is None:
            return sum(self.used.values()) < self.total
        return used < self.limits[source]

    def take(self, source: str, tokens: int) -> None:
        self.used[source] = self.used.get(source, 0) + tokens

    def exhausted(self) -> bool:
        if self.total is None:
            return False
        if self.limits is None:
            return sum(self.used.values()) >= self.total
        return all(self.used.get(name, 0) >= limit for name, limit in self.limits.items())


def write_documents(settings: PretrainDataConfig, tokenizer_dir: str | os.PathLike, out_dir: str | os.PathLike) -> dict:
    """Run the documents stage; returns the manifest written to out_dir/manifest.json."""
    from ga.data.tokenize import DocumentTokenizer

    tokenizer = DocumentTokenizer.load(tokenizer_dir, settings.bos_token, settings.eos_token)
    budget = TokenBudget(settings.token_budget, settings.effective_mixture())
    seen_ids: set[str] = set()
    shards, pending, pending_rows = [], [], 0
    per_source: dict[str, list[int]] = {}

    with atomic_dir(out_dir) as tmp:

        def flush(rows: int):
            # shards hold exactly documents_per_shard rows (the last one fewer), whatever the chunk size
            nonlocal pending, pending_rows
            frame = pl.concat(pending)
            name = shard_name(len(shards))
            write_parquet(frame.head(rows), tmp / name)
            shards.append({"file": name, "rows": min(rows, frame.height), "sha256": sha256_file(tmp / name)})
            rest = frame.slice(rows)
            pending, pending_rows = ([rest] if rest.height else []), rest.height

        with tqdm(total=settings.token_budget, unit="tok", desc=f"documents[{settings.source}]") as progress:
            for origin, offset, chunk in SOURCES[settings.source](settings):
                validate(RAW_DOCUMENTS, chunk, origin, offset)
                counts = tokenizer.count_tokens(chunk["text"].to_list())
                keep = []
                for index, (doc_id, source, tokens) in enumerate(zip(chunk["doc_id"], chunk["source"], counts)):
                    if doc_id in seen_ids:
                        raise DataError(origin, offset + index, "doc_id", f"duplicate doc_id {doc_id!r}")
                    if budget.wants(source):
                        seen_ids.add(doc_id)
                        budget.take(source, tokens)
                        stats = per_source.setdefault(source, [0, 0])
                        stats[0] += 1
                        stats[1] += tokens
                        keep.append(index)
                        progress.update(tokens)
                if keep:
                    pending.append(chunk[keep])
                    pending_rows += len(keep)
                while pending_rows >= settings.documents_per_shard:
                    flush(settings.documents_per_shard)
                if budget.exhausted():
                    break
            if pending_rows:
                flush(pending_rows)
        if not shards:
            raise DataError(settings.source, None, None, "the source yielded no documents within the budget")
        sources = pl.DataFrame(
            [{"source": s, "documents": d, "tokens": t} for s, (d, t) in sorted(per_source.items())],
            schema={"source": pl.Utf8, "documents": pl.Int64, "tokens": pl.Int64},
        )
        validate(contracts.MANIFEST_SOURCES, sources, "manifest.json/sources")
        validate(contracts.MANIFEST_SHARDS, pl.DataFrame(shards), "manifest.json/shards")
        manifest = {
            "kind": "pretrain_documents",
            "params": settings.documents_depends_on(),
            "tokenizer": tokenizer.describe(),
            "budget_limits": budget.limits,
            "documents": int(sources["documents"].sum()),
            "tokens": int(sources["tokens"].sum()),
            "sources": sources.to_dicts(),
            "shards": shards,
            "content_sha256": sha256_json([s["sha256"] for s in shards]),
        }
        write_json(manifest, tmp / "manifest.json")
    return manifest
