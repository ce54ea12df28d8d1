"""What a personalization evaluation asks: multi-session conversations, and the questions about them.

A `Chat` is a conversation as a source gives it: its sessions as (role, text) turns, and its questions. `conversation`
lays it out as context text with the shared `ga.format.SessionLayout` (the layout instruction tuning gave
`synthetic_chat`'s contexts), keeping each session's text so that the generative adapter can read it one session at
a time. A `Conversation` is a `ga.eval.contexts.Context`, so every knowledge-QA method runs on it unchanged:

  context_id   `{benchmark}-{index:05d}`, numbered in the source's order from 0
  length       the conversation's own token count (there is no target length k here)
  text         the sessions' texts joined by the layout's separator
  passage_ids  one item: where the conversation comes from (MSC: `metadata.initial_data_id` or the row number;
               the twin: `persona:<persona_id>`)
  questions    MSC: one (`self_instruct.B`, reference `self_instruct.A`); the twin: one per fact of the persona

The conversations file (`write_conversations` / `read_conversations`): Parquet, one row per conversation, the
sessions as a list of texts and the questions as a list of structs; written atomically and checked against
`CONVERSATIONS_SCHEMA` on read (a DataError names the file, the row and the column). Job batches are slices of it in
file order (`batch_conversations`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandera.polars as pa
import polars as pl

from ga.data.parquet import read_checked_parquet, write_checked_parquet
from ga.eval.contexts import Context, Question
from ga.eval.questions import QUESTION_DTYPE, non_blank, question_rows, questions_of, questions_well_formed
from ga.format import SessionLayout, Turn

CountTokens = Callable[[str], int]


@dataclass(frozen=True)
class Chat:
    """One conversation as its source gives it."""

    source_id: str
    sessions: tuple[tuple[Turn, ...], ...]
    """Earlier sessions first; MSC's current dialog is the last one."""
    questions: tuple[tuple[str, str, str], ...]
    """(id suffix, question, reference answer) of each question, in order."""


@dataclass(frozen=True)
class Conversation(Context):
    """A Context whose text is a multi-session chat, with its sessions' texts kept (see the module doc)."""

    sessions: tuple[str, ...] = field(default_factory=tuple)
    """Each session's text (`SessionLayout.session_text`), in order."""
    session_separator: str = ""
    """What joins the sessions' texts into `text`."""

    def __post_init__(self):
        if not self.sessions:
            raise ValueError(f"conversation {self.context_id!r} has no sessions")
        if self.session_separator.join(self.sessions) != self.text:
            raise ValueError(
                f"conversation {self.context_id!r}: text is not its sessions joined by {self.session_separator!r}"
            )


def conversation_id(benchmark: str, index: int) -> str:
    return f"{benchmark}-{index:05d}"


def conversation(
    chat: Chat, benchmark: str, index: int, layout: SessionLayout, count_tokens: CountTokens
) -> Conversation:
    """Chat number `index` of `benchmark` laid out as context text; `count_tokens` counts base-model tokens of a
    text (no special tokens)."""
    identifier = conversation_id(benchmark, index)
    sessions = tuple(layout.session_texts(chat.sessions))
    text = layout.join(sessions)
    tokens = count_tokens(text)
    return Conversation(
        context_id=identifier,
        benchmark=benchmark,
        length=tokens,
        text=text,
        num_tokens=tokens,
        passage_ids=(chat.source_id,),
        questions=tuple(
            Question(f"{identifier}-{suffix}", question, (answer,)) for suffix, question, answer in chat.questions
        ),
        sessions=sessions,
        session_separator=layout.separator,
    )


def conversations(
    chats: Sequence[Chat], benchmark: str, layout: SessionLayout, count_tokens: CountTokens
) -> list[Conversation]:
    return [conversation(chat, benchmark, index, layout, count_tokens) for index, chat in enumerate(chats)]


# ---------------------------------------------------------------- job batches
def batch_count(conversations: int, per_batch: int) -> int:
    """Batches of `per_batch` conversations that `conversations` conversations make (the last one may be short)."""
    if per_batch < 1:
        raise ValueError(f"conversations per batch must be at least 1, got {per_batch}")
    return -(-conversations // per_batch)


def batch_conversations(all_conversations: Sequence[Conversation], batch: int, per_batch: int) -> list[Conversation]:
    """Batch `batch` (from 0): the conversations [batch x per_batch, (batch + 1) x per_batch) in file order."""
    count = batch_count(len(all_conversations), per_batch)
    if not 0 <= batch < count:
        raise ValueError(
            f"batch {batch} does not exist: {len(all_conversations)} conversations make {count} "
            f"batch(es) of {per_batch}"
        )
    return list(all_conversations[batch * per_batch : (batch + 1) * per_batch])


# ---------------------------------------------------------------- the conversations file
CONVERSATIONS_DTYPES = {
    "conversation_id": pl.Utf8,
    "benchmark": pl.Utf8,
    "source_id": pl.Utf8,
    "sessions": pl.List(pl.Utf8),
    "session_separator": pl.Utf8,
    "num_tokens": pl.Int64,
    "questions": pl.List(QUESTION_DTYPE),
}


def _sessions_non_blank(data: pa.PolarsData) -> pl.LazyFrame:
    sessions = pl.col(data.key)
    blank = sessions.list.eval((pl.element().str.strip_chars().str.len_chars() == 0).fill_null(True)).list.any()
    return data.lazyframe.select((sessions.list.len() > 0) & ~blank)


def _questions_asked_once(data: pa.PolarsData) -> pl.LazyFrame:
    ids = (
        data.lazyframe.with_row_index("_row")
        .select("_row", pl.col("questions").list.eval(pl.element().struct.field("question_id")).alias("_id"))
        .explode("_id")
        .with_columns(_once=(pl.len().over("_id") == 1) | pl.col("_id").is_null())
    )
    return (
        ids.group_by("_row", maintain_order=True)
        .agg(pl.col("_once").all().alias("questions_asked_once"))
        .sort("_row")
        .select("questions_asked_once")
    )


CONVERSATIONS_SCHEMA = pa.DataFrameSchema(
    {
        "conversation_id": pa.Column(
            pl.Utf8, nullable=False, unique=True, checks=pa.Check(non_blank, name="non_empty")
        ),
        "benchmark": pa.Column(pl.Utf8, nullable=False, checks=pa.Check(non_blank, name="non_empty")),
        "source_id": pa.Column(pl.Utf8, nullable=False, checks=pa.Check(non_blank, name="non_empty")),
        "sessions": pa.Column(
            pl.List(pl.Utf8), nullable=False, checks=pa.Check(_sessions_non_blank, name="non_empty_sessions")
        ),
        "session_separator": pa.Column(pl.Utf8, nullable=False),
        "num_tokens": pa.Column(pl.Int64, nullable=False, checks=pa.Check.ge(1)),
        "questions": pa.Column(
            pl.List(QUESTION_DTYPE),
            nullable=False,
            checks=pa.Check(questions_well_formed, name="question_ids_and_texts_non_empty"),
        ),
    },
    checks=[pa.Check(_questions_asked_once, name="each_question_in_one_conversation")],
    strict=True,
    name="msc_conversations",
)


def conversations_frame(items: Sequence[Conversation]) -> pl.DataFrame:
    rows = [
        {
            "conversation_id": c.context_id,
            "benchmark": c.benchmark,
            "source_id": c.passage_ids[0],
            "sessions": list(c.sessions),
            "session_separator": c.session_separator,
            "num_tokens": c.num_tokens,
            "questions": question_rows(c.questions),
        }
        for c in items
    ]
    return pl.DataFrame(rows, schema=CONVERSATIONS_DTYPES)


def write_conversations(items: Sequence[Conversation], path: str | Path) -> Path:
    """The conversations file, checked against `CONVERSATIONS_SCHEMA` before it is written (atomically)."""
    return write_checked_parquet(CONVERSATIONS_SCHEMA, conversations_frame(items), path)


def read_conversations(path: str | Path) -> list[Conversation]:
    """The conversations of a conversations file, in file order; a DataError names the file, row and column."""
    frame = read_checked_parquet(CONVERSATIONS_SCHEMA, path)
    return [
        Conversation(
            context_id=row["conversation_id"],
            benchmark=row["benchmark"],
            length=row["num_tokens"],
            text=row["session_separator"].join(row["sessions"]),
            num_tokens=row["num_tokens"],
            passage_ids=(row["source_id"],),
            questions=questions_of(row["questions"]),
            sessions=tuple(row["sessions"]),
            session_separator=row["session_separator"],
        )
        for row in frame.iter_rows(named=True)
    ]
