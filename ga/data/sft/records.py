"""The instruction-tuning record format (docs/method.md#record-format) and what a dataset manifest records about
where the records came from.

One record is one context and a multi-turn question-answer session:

    {"id": "<dataset>.<n>", "context": str,
     "conversations": [{"role": "user", "content": str}, {"role": "assistant", "content": str}, ...],
     "context_sources": [str, ...]}

`context_sources` (this project's addition to the authors' format) names what the context is made of, as
`<kind>:<id>` strings, sorted and distinct: the record's own passages and its distractors alike. Two records whose
lists are disjoint share no text, which the other-context control of validation relies on (its donor must not carry
the scored record's passages; `SftExamples.donor_for`). Per dataset:

    coqa, drop, msmarco, narrativeqa, pubmedqa, quail, longalpaca, pwc   passage:<digest>, one per passage (own and
                                            distractor), the digest of its text (`passage_source`): the native rows
                                            have no common id, and equal text is what must not be shared
    booksum                                 book:<book>: chapters of one book share characters and plot
    metaicl                                 task:<task>: the demonstrations are the task's examples
    entity_qa                               entity:<entity_id>, the asked entity and every distractor entity
    synthetic_icl                           icl_family:<family>, plus entity:<entity_id> of each train entity whose
                                            name the demonstrations contain (the entity_lookup family)
    synthetic_chat                          persona:<persona_id>

`n` numbers the dataset's candidate records (before filters), so a record keeps its id when a filter setting
changes. MetaICL ids carry the task as a third part (`metaicl.<n>.<task>`) so that the leakage check can run on
the final records alone (ga/data/sft/metaicl_split.py).

The contract: non-empty strings, unique ids, a conversation that starts with the user, alternates and ends with
the assistant, at least one context source, each `<kind>:<id>` and none twice. Polars strings are always valid
UTF-8; sources read from bytes are checked when they are read (ga/data/native.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass

import pandera.polars as pa
import polars as pl

from ga.data.contracts import validate

USER, ASSISTANT = "user", "assistant"
TURN_DTYPE = pl.Struct({"role": pl.Utf8, "content": pl.Utf8})
RECORD_SCHEMA = {
    "id": pl.Utf8,
    "context": pl.Utf8,
    "conversations": pl.List(TURN_DTYPE),
    "context_sources": pl.List(pl.Utf8),
}
RECORD_COLUMNS = tuple(RECORD_SCHEMA)

DATASET_NAME_PATTERN = r"[a-z][a-z0-9_]*"
RECORD_ID_PATTERN = rf"{DATASET_NAME_PATTERN}\.[0-9]+(\.[A-Za-z0-9_\-]+)?"
"""`<dataset>.<n>`, optionally `.<tag>` (MetaICL: the task)."""
SOURCE_ID_PATTERN = r"[a-z][a-z_]*:\S(.*\S)?"
"""One entry of `context_sources`: `<kind>:<id>`, the id without surrounding whitespace."""
SOURCE_DIGEST_BYTES = 8
"""Bytes of the digest naming a passage by its text (16 hex characters)."""


def record_id(dataset: str, number: int, tag: str | None = None) -> str:
    return f"{dataset}.{number}" if tag is None else f"{dataset}.{number}.{tag}"


def record_dataset(identifier: str) -> str:
    """The dataset part of a record id."""
    return identifier.split(".", 1)[0]


def conversation(pairs) -> list[dict]:
    """Question-answer pairs as alternating user / assistant turns."""
    turns = []
    for question, answer in pairs:
        turns.append({"role": USER, "content": question})
        turns.append({"role": ASSISTANT, "content": answer})
    return turns


def passage_source(passage: str) -> str:
    """The `context_sources` entry of a passage known only by its text: `passage:<digest of the text>`."""
    return f"passage:{hashlib.blake2b(passage.encode(), digest_size=SOURCE_DIGEST_BYTES).hexdigest()}"


def records_frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=RECORD_SCHEMA)


# ---------------------------------------------------------------- contract
def _non_blank(data: pa.PolarsData) -> pl.LazyFrame:
    return data.lazyframe.select(pl.col(data.key).str.strip_chars().str.len_chars() > 0)


def _turns(expr: pl.Expr) -> pl.Expr:
    """Apply `expr` (over pl.element(), one turn) to every turn; True where it holds for all of them."""
    return pl.col("conversations").list.eval(expr.fill_null(False)).list.all()


def _has_turns(data: pa.PolarsData) -> pl.LazyFrame:
    return data.lazyframe.select(pl.col(data.key).list.len() > 0)


def _user_first_and_alternating(data: pa.PolarsData) -> pl.LazyFrame:
    expected = pl.when(pl.int_range(pl.len()) % 2 == 0).then(pl.lit(USER)).otherwise(pl.lit(ASSISTANT))
    return data.lazyframe.select(_turns(pl.element().struct.field("role") == expected))


def _ends_with_assistant(data: pa.PolarsData) -> pl.LazyFrame:
    return data.lazyframe.select(pl.col(data.key).list.len() % 2 == 0)


def _contents_non_blank(data: pa.PolarsData) -> pl.LazyFrame:
    return data.lazyframe.select(_turns(pl.element().struct.field("content").str.strip_chars().str.len_chars() > 0))


def _sources_valid(data: pa.PolarsData) -> pl.LazyFrame:
    entries = pl.col(data.key)
    return data.lazyframe.select(
        (entries.list.len() > 0)
        & entries.list.eval(pl.element().str.contains(f"^{SOURCE_ID_PATTERN}$").fill_null(False)).list.all()
        & (entries.list.n_unique() == entries.list.len())
    )


def records_contract(dataset: str | None = None) -> pa.DataFrameSchema:
    """The record contract; with `dataset`, every id must also belong to that dataset."""
    id_pattern = rf"{re.escape(dataset)}\.[0-9]+(\.[A-Za-z0-9_\-]+)?" if dataset else RECORD_ID_PATTERN
    return pa.DataFrameSchema(
        {
            "id": pa.Column(pl.Utf8, nullable=False, unique=True, checks=pa.Check.str_matches(f"^{id_pattern}$")),
            "context": pa.Column(pl.Utf8, nullable=False, checks=pa.Check(_non_blank, name="non_empty_string")),
            "conversations": pa.Column(
                pl.List(TURN_DTYPE),
                nullable=False,
                checks=[
                    pa.Check(_has_turns, name="has_turns"),
                    pa.Check(_user_first_and_alternating, name="user_first_then_alternating"),
                    pa.Check(_ends_with_assistant, name="ends_with_assistant"),
                    pa.Check(_contents_non_blank, name="turn_contents_non_empty"),
                ],
            ),
            "context_sources": pa.Column(
                pl.List(pl.Utf8),
                nullable=False,
                checks=pa.Check(_sources_valid, name="non_empty_distinct_kind_colon_id"),
            ),
        },
        strict=True,
        name=f"sft_records[{dataset}]" if dataset else "sft_records",
    )


SFT_RECORDS = records_contract()


def validate_records(df: pl.DataFrame, file: str, row_offset: int = 0, dataset: str | None = None) -> pl.DataFrame:
    """Check records (rows `row_offset`.. of `file`) or raise a DataError naming file, row and column."""
    return validate(records_contract(dataset) if dataset else SFT_RECORDS, df, file, row_offset)


# ---------------------------------------------------------------- provenance (dataset manifests)
@dataclass(frozen=True)
class SourceProvenance:
    """Where one dataset's records came from: what a dataset manifest records next to its statistics."""

    dataset: str
    hub_id: str
    revision: str | None
    """Pinned hub commit; None: the default branch at download time."""
    config_name: str | None
    split: str
    files: tuple[str, ...]
    """Files fetched from the hub repository (file-based sources); empty for datasets loaded by `datasets`."""
    licence: str | None
    """As published by the source; None: not verified here (read it from the dataset card)."""

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "files": list(self.files)}


PROVENANCE_FIELDS = tuple(field.name for field in dataclasses.fields(SourceProvenance))

SOURCE_PROVENANCE = pa.DataFrameSchema(
    {
        "dataset": pa.Column(pl.Utf8, unique=True, checks=pa.Check.str_matches(f"^{DATASET_NAME_PATTERN}$")),
        "hub_id": pa.Column(pl.Utf8, checks=pa.Check.str_matches(r"^[^/\s]+/[^/\s]+$")),
        "revision": pa.Column(pl.Utf8, nullable=True, checks=pa.Check.str_matches(r"^[0-9a-f]{40}$")),
        "config_name": pa.Column(pl.Utf8, nullable=True),
        "split": pa.Column(pl.Utf8, checks=pa.Check(_non_blank, name="non_empty_string")),
        "files": pa.Column(pl.List(pl.Utf8)),
        "licence": pa.Column(pl.Utf8, nullable=True),
    },
    strict=True,
    name="sft_source_provenance",
)
"""One row per dataset of a manifest's provenance table."""


def provenance_frame(entries: list[SourceProvenance]) -> pl.DataFrame:
    schema = {
        "dataset": pl.Utf8,
        "hub_id": pl.Utf8,
        "revision": pl.Utf8,
        "config_name": pl.Utf8,
        "split": pl.Utf8,
        "files": pl.List(pl.Utf8),
        "licence": pl.Utf8,
    }
    frame = pl.DataFrame([entry.to_dict() for entry in entries], schema=schema)
    return validate(SOURCE_PROVENANCE, frame, "sft source provenance")
