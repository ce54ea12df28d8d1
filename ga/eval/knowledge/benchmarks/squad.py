"""SQuAD v1.1 (`rajpurkar/squad`, config `plain_text`): the evaluation split's passages with their questions, and the
training split's question-answer pairs for the QA fine-tuning baseline.

Native row (one per question): `id`, `title`, `context`, `question`, `answers` {`text`[], `answer_start`[]}.
Passages: the unique `context` texts in order of first appearance (the rows of a passage's questions are adjacent
in the published splits, but a repeat anywhere joins the first), passage id `{title}-{j}` (the j-th unique context
of that title, from 0); each question's id is the row's `id` and its references are `answers.text` in order, blank
ones left out. A question left without references is kept (`references=()`): the runner counts it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

from ga.data.hub import LoadSplit, download_split, load_hub_split
from ga.data.native import NativeRow, parquet_rows, strings, text
from ga.data.sft.records import SourceProvenance
from ga.eval.contexts import Passage, Question
from ga.eval.knowledge.config import SquadSourceConfig

NAME = "squad"
LICENCE = "CC BY-SA 4.0"
COLUMNS = ("id", "title", "context", "question", "answers.text")


def provenance(cfg: SquadSourceConfig, split: str | None = None) -> SourceProvenance:
    return SourceProvenance(NAME, cfg.hub_id, cfg.revision, cfg.config_name, split or cfg.split, (), LICENCE)


def download(
    cfg: SquadSourceConfig, cache_dir: str | Path, load_split: LoadSplit = load_hub_split, split: str | None = None
) -> Path:
    """One split (default: `cfg.split`, the evaluation split) as a Parquet file in the native layout, cached under
    `cache_dir/squad/<revision>/`; `load_split` is the hub call (tests stand in for it)."""
    return download_split(NAME, dataclasses.replace(cfg, split=split or cfg.split), cache_dir, load_split)


def read_native(path: str | Path) -> Iterable[NativeRow]:
    return parquet_rows(path, COLUMNS)


def _references(row: NativeRow) -> tuple[str, ...]:
    return tuple(answer for answer in strings(row, "answers.text") if answer.strip())


def passages(path: str | Path) -> list[Passage]:
    """The unique passages of a downloaded split, in order of first appearance, each with its questions."""
    order: dict[str, str] = {}  # context text -> passage id
    questions: dict[str, list[Question]] = {}
    per_title: dict[str, int] = {}
    for row in read_native(path):
        context = text(row, "context")
        if context not in order:
            title = text(row, "title")
            order[context] = f"{title}-{per_title.get(title, 0)}"
            per_title[title] = per_title.get(title, 0) + 1
            questions[context] = []
        questions[context].append(Question(text(row, "id"), text(row, "question"), _references(row)))
    return [Passage(passage_id, context, tuple(questions[context])) for context, passage_id in order.items()]


def qa_pairs(path: str | Path) -> list[tuple[str, str]]:
    """(question, first answer) of every question of a downloaded split (the training split for QA fine-tuning);
    a question without a non-blank answer teaches nothing and is left out."""
    pairs = []
    for row in read_native(path):
        references = _references(row)
        if references:
            pairs.append((text(row, "question"), references[0]))
    return pairs
