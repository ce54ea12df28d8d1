"""The personalization benchmarks' sources (docs/data-sources.md#multi-session-chat): each gives its conversations as
`Chat`s, in the source's order.

`msc`: MemGPT's `MSC-Self-Instruct`, one JSONL file on the hub (`huggingface_hub.hf_hub_download`, cached under
`cache_dir/msc/<revision or default-branch>/`). Native row (one per conversation), the fields read:
  previous_dialogs[]   the earlier sessions, oldest first, each with `dialog[]` turns of `text` (and `id`, the
                       speaker, where present; MSC also gives `personas`, `time_num`, `time_unit`, `time_back`)
  dialog[]             the current session: turns of `text` and `id` ("Speaker 1" / "Speaker 2")
  self_instruct        {`B`: the question (Speaker 2 asks), `A`: the reference answer (Speaker 1's)}
  metadata             {`initial_data_id`, `session_id`} (optional; names the conversation's source)
and, not read: `personas`, `init_personas`, `personas_update1/2`, `summary_speaker_1/2` (persona sentences and
summaries: the conversation itself is the context). The conversation is `previous_dialogs` then `dialog`. A turn's
speaker is its `id` when it has one (it must be `msc.assistant_speaker` or `msc.user_speaker`); a turn without `id`
takes its place in the alternation that MSC sessions follow, Speaker 1 first (turns 0, 2, ... Speaker 1). Turns
whose text is blank are left out and counted (`MscChats.blank_turns`); a session left without turns is an error.

`synthetic_chat`: the embedded twin, the EVAL personas of `sft_sources.synthetic_chat` (generated from the run's
seed; never in a training record): their sessions are the conversation, every fact of the persona is a question
(id suffix = the fact's attribute) with the fact's answer as the reference.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ga.data.contracts import DataError
from ga.data.hub import FetchFile, download_file, fetch_hub_file
from ga.data.native import NativeRow, items, jsonl_rows, text, value
from ga.data.sft.embedded import synthetic_chat
from ga.data.sft.embedded.common import EVAL, split_of
from ga.data.sft.embedded.config import SyntheticChatConfig
from ga.data.sft.records import ASSISTANT, USER, SourceProvenance
from ga.eval.msc.config import MscSourceConfig
from ga.eval.msc.conversations import Chat

NAME = "msc"
LICENCE = "Apache-2.0"
"""The licence the hub repository declares."""
SPEAKER_ORDER = ("Speaker 1", "Speaker 2")
"""MSC's speakers in the order their turns alternate, Speaker 1 first (for turns without an `id`)."""
QUESTION_SUFFIX = "q0"
"""MSC asks one question per conversation."""


@dataclass(frozen=True)
class MscChats:
    chats: list[Chat]
    blank_turns: int
    """Turns left out because their text is blank."""
    speakers_by_position: int
    """Turns without an `id` whose speaker follows from their position."""


def provenance(cfg: MscSourceConfig) -> SourceProvenance:
    return SourceProvenance(NAME, cfg.hub_id, cfg.revision, None, "train", (cfg.filename,), LICENCE)


def download(cfg: MscSourceConfig, cache_dir: str | Path, fetch_file: FetchFile = fetch_hub_file) -> Path:
    """The JSONL file at `cfg.revision`, cached under `cache_dir/msc/<revision>/`; `fetch_file` is the hub call
    (tests stand in for it)."""
    return download_file(NAME, cfg, cfg.filename, cache_dir, fetch_file)


def read_native(path: str | Path) -> Iterator[NativeRow]:
    return jsonl_rows(path)


def _session(row: NativeRow, path: str, cfg: MscSourceConfig, counts: dict) -> tuple[tuple[str, str], ...]:
    roles = {cfg.assistant_speaker: ASSISTANT, cfg.user_speaker: USER}
    turns = []
    for index, turn in enumerate(items(row, path)):
        field = f"{path}[{index}]"
        if not isinstance(turn, dict):
            raise DataError(row.file, row.row, field, f"expected an object, got {type(turn).__name__}")
        content = value(row, f"{field}.text")
        if not isinstance(content, str):
            raise DataError(row.file, row.row, f"{field}.text", f"expected a string, got {type(content).__name__}")
        if not content.strip():
            counts["blank_turns"] += 1
            continue
        speaker = turn.get("id")
        if speaker is None:
            speaker = SPEAKER_ORDER[index % len(SPEAKER_ORDER)]
            counts["speakers_by_position"] += 1
        if speaker not in roles:
            raise DataError(
                row.file,
                row.row,
                f"{field}.id",
                f"speaker {speaker!r} is neither "
                f"msc.assistant_speaker ({cfg.assistant_speaker!r}) nor "
                f"msc.user_speaker ({cfg.user_speaker!r})",
            )
        turns.append((roles[speaker], content.strip()))
    if not turns:
        raise DataError(row.file, row.row, path, "a session without any turn")
    return tuple(turns)


def _source_id(row: NativeRow) -> str:
    metadata = row.data.get("metadata")
    initial = metadata.get("initial_data_id") if isinstance(metadata, dict) else None
    return str(initial) if initial not in (None, "") else f"row-{row.row}"


def chats(rows: Iterable[NativeRow], cfg: MscSourceConfig) -> MscChats:
    """Every conversation of the file, in file order (see the module doc)."""
    counts = {"blank_turns": 0, "speakers_by_position": 0}
    out = []
    for row in rows:
        previous = [
            _session(row, f"previous_dialogs[{index}].dialog", cfg, counts)
            for index in range(len(items(row, "previous_dialogs")))
        ]
        current = _session(row, "dialog", cfg, counts)
        question = (QUESTION_SUFFIX, text(row, "self_instruct.B").strip(), text(row, "self_instruct.A").strip())
        out.append(Chat(_source_id(row), tuple(previous) + (current,), (question,)))
    return MscChats(out, **counts)


def twin_chats(cfg: SyntheticChatConfig) -> list[Chat]:
    """The held-out personas of `synthetic_chat`, in generated order, each with all its facts as questions."""
    out = []
    for row in synthetic_chat.native_rows(cfg):
        if split_of(row) != EVAL:
            continue
        questions = tuple(
            (text(row, f"facts[{i}].attribute"), text(row, f"facts[{i}].question"), text(row, f"facts[{i}].answer"))
            for i in range(len(items(row, "facts")))
        )
        sessions = tuple(tuple(turns) for turns in synthetic_chat.session_turns(row))
        out.append(Chat(f"persona:{text(row, 'persona_id')}", sessions, questions))
    return out
