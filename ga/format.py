"""How a context and a conversation become text and tokens: one format for instruction tuning, evaluation and the
user-facing API (docs/method.md#model-inputs-of-a-record; the authors wrapped the context in the chat template
for training but fed it plain at inference, docs/design.md#one-context-format).

- `ContextFormat`: a context is plain text framed like a pretraining document, BOS + its tokens + EOS (the
  tokenizer's own BOS/EOS, as `pretrain_data` uses by default), so the generator reads contexts the way it read
  text in pretraining. Special-token strings inside the text stay text (a context cannot inject an end-of-turn).
- `SessionLayout`: a multi-session chat given as a context (earlier sessions with speaker labels), one text layout
  for the instruction-tuning records and the personalization evaluation.
- `ChatFormat`: a conversation rendered with the base model's own chat template, and which characters of the
  rendered text carry loss: every assistant turn's text and its end-of-turn token, nothing else. Assistant spans
  are found by rendering prefixes of the conversation (`render_incremental`: the text after the prompt for turn k,
  up to the end of turn k, is what the model must generate). `render` gets the same answer with one template call
  per conversation: it learns the template's pieces once from probe renders, assembles the text from them and
  checks it against the template's own rendering, falling back to the incremental method where they differ.

`ChatFormat.encode` turns rendered chats into token ids and labels (IGNORE_INDEX where there is no loss): a token
is labelled when it overlaps a loss span, so a token that joins template text and answer text is learned.
"""

from __future__ import annotations

import bisect
import itertools
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ga.data.contracts import DataError
from ga.data.sft.records import ASSISTANT, USER
from ga.labels import IGNORE_INDEX

TOKENIZER_CONFIG = "tokenizer_config.json"
BACKEND_USES = ("copy", "own", "share")
PROBE_PAIRS = 3
"""Question-answer pairs of the probe conversation from which a template's pieces are learned (three show whether
the pieces between turns repeat)."""


def _probe_text(role: str, index: int) -> str:
    # plain letters and digits: no template escapes, strips or splits them
    return f"GAPROBE{role.upper()}{index}Z"


# ---------------------------------------------------------------- context
class ContextFormat:
    """A context as token ids: BOS + the text's tokens + EOS; special-token strings in the text are plain text."""

    def __init__(self, backend, bos_id: int | None, eos_id: int | None, backend_use: str = "copy"):
        """`backend`: a `tokenizers.Tokenizer`. Reading special-token strings as text is a setting of the tokenizer
        object, not of one call, hence `backend_use`:
        - "copy": a copy of `backend` is made once, with the setting on (safe for any caller);
        - "own": `backend` belongs to this object alone, and the setting is switched on;
        - "share": `backend` is shared (e.g. with the chat format); the setting is on only while a context is
          encoded, so encode from one thread at a time."""
        from tokenizers import Tokenizer

        if backend_use not in BACKEND_USES:
            raise ValueError(f"backend_use: {backend_use!r} is not one of {BACKEND_USES}")
        self.share_backend = backend_use == "share"
        self.backend = Tokenizer.from_str(backend.to_str()) if backend_use == "copy" else backend
        if not self.share_backend:
            self.backend.encode_special_tokens = True
        self.bos_id, self.eos_id = bos_id, eos_id

    @classmethod
    def from_tokenizer(cls, tokenizer, backend_use: str = "copy") -> ContextFormat:
        """From a Transformers fast tokenizer (what `ga.base.load_base` returns)."""
        return cls(tokenizer.backend_tokenizer, tokenizer.bos_token_id, tokenizer.eos_token_id, backend_use)

    @classmethod
    def load(cls, model_dir: str | os.PathLike) -> ContextFormat:
        """From a model folder's tokenizer files (no Transformers import)."""
        from ga.data.tokenize import DocumentTokenizer

        tokenizer = DocumentTokenizer.load(model_dir)
        return cls(tokenizer.backend, tokenizer.bos_id, tokenizer.eos_id, backend_use="own")

    @property
    def framing_tokens(self) -> int:
        return int(self.bos_id is not None) + int(self.eos_id is not None)

    def ids(self, context: str) -> list[int]:
        """The token ids of one context (what `GenerativeAdapter.encode` should be given)."""
        return self.ids_batch([context])[0]

    def ids_batch(self, contexts: Sequence[str]) -> list[list[int]]:
        encode_batch = getattr(self.backend, "encode_batch_fast", self.backend.encode_batch)
        head = [self.bos_id] if self.bos_id is not None else []
        tail = [self.eos_id] if self.eos_id is not None else []
        if self.share_backend:
            self.backend.encode_special_tokens = True
        try:
            encodings = encode_batch(list(contexts), add_special_tokens=False)
        finally:
            if self.share_backend:
                self.backend.encode_special_tokens = False
        return [head + encoding.ids + tail for encoding in encodings]

    def segment_ids(self, context: str, starts: Sequence[int]) -> list[list[int]]:
        """`ids(context)` cut into consecutive segments: a new segment begins at the first token whose text starts
        at or after each character offset of `starts` (ascending, after 0); a token across an offset stays in the
        earlier segment, BOS opens the first segment and EOS closes the last. Concatenated, the segments are
        exactly `ids(context)`: the same tokens as the whole context, cut where its parts begin."""
        if any(later < earlier for earlier, later in itertools.pairwise(starts)) or (starts and starts[0] <= 0):
            raise ValueError(f"segment starts must be ascending character offsets after 0, got {list(starts)}")
        if self.share_backend:
            self.backend.encode_special_tokens = True
        try:
            encoding = self.backend.encode(context, add_special_tokens=False)
        finally:
            if self.share_backend:
                self.backend.encode_special_tokens = False
        token_starts = [first for first, _ in encoding.offsets]
        head = [self.bos_id] if self.bos_id is not None else []
        tail = [self.eos_id] if self.eos_id is not None else []
        ids = head + encoding.ids + tail
        cuts = [0] + [len(head) + bisect.bisect_left(token_starts, start) for start in starts] + [len(ids)]
        return [ids[begin:end] for begin, end in itertools.pairwise(cuts)]


def context_windows(ids: Sequence[int], window: int, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Context ids cut into (windows, window) ids and attention mask; the last window is padded at its end."""
    count = -(-len(ids) // window)
    grid = np.full(count * window, pad_id, dtype=np.int32)
    grid[: len(ids)] = ids
    mask = np.zeros(count * window, dtype=np.int8)
    mask[: len(ids)] = 1
    return grid.reshape(count, window), mask.reshape(count, window)


# ---------------------------------------------------------------- multi-session chat as context text
Turn = tuple[str, str]
"""(role, text) of one turn of a chat given as context: role is USER or ASSISTANT."""


@dataclass(frozen=True)
class SessionLayout:
    """How the sessions of a multi-session chat become one context text, the same for instruction tuning
    (`synthetic_chat`'s records) and for evaluation (Multi-Session Chat and its embedded twin), so that the generator
    reads conversations alike in both:

        {header of session 1}
        {user_label}: {text}
        {assistant_label}: {text}
        ...
        {separator}{header of session 2}
        ...

    `header` takes `{number}` (sessions are numbered from 1)."""

    header: str
    user_label: str
    assistant_label: str
    separator: str

    def session_text(self, number: int, turns: Sequence[Turn]) -> str:
        """Session `number` (from 1): its header, then one line per turn with the speaker's label."""
        labels = {USER: self.user_label, ASSISTANT: self.assistant_label}
        lines = [self.header.format(number=number)]
        for index, (role, text) in enumerate(turns):
            if role not in labels:
                raise ValueError(f"session {number}, turn {index}: role {role!r} is not one of {sorted(labels)}")
            lines.append(f"{labels[role]}: {text}")
        return "\n".join(lines)

    def session_texts(self, sessions: Sequence[Sequence[Turn]]) -> list[str]:
        return [self.session_text(number, turns) for number, turns in enumerate(sessions, start=1)]

    def join(self, session_texts: Sequence[str]) -> str:
        return self.separator.join(session_texts)

    def text(self, sessions: Sequence[Sequence[Turn]]) -> str:
        """The context text of a chat: every session's text, joined by `separator`."""
        return self.join(self.session_texts(sessions))


# ---------------------------------------------------------------- conversation
@dataclass(frozen=True)
class RenderedChat:
    """A conversation rendered with the chat template, and the character ranges [start, end) that carry loss."""

    text: str
    loss_spans: tuple[tuple[int, int], ...]
    pairs: int
    """Question-answer pairs in the conversation."""


@dataclass(frozen=True)
class TemplatePieces:
    """A chat template seen as fixed text between message contents (learned from a probe conversation):

        opening + user_1 + user_to_assistant + assistant_1 + assistant_to_user + user_2 + ... + assistant_n + closing

    `answer_offset`: characters of `user_to_assistant` that the generation prompt already holds (the rest is
    generated with the answer); `closing` is the end of the last assistant turn, and `assistant_to_user` starts with
    it (the template renders a finished turn the same whether or not a turn follows)."""

    opening: str
    user_to_assistant: str
    assistant_to_user: str
    closing: str
    answer_offset: int


def _check_roles(messages: Sequence[dict]) -> None:
    if not messages or len(messages) % 2:
        raise ValueError(f"a conversation needs user/assistant pairs, got {len(messages)} message(s)")
    for index, message in enumerate(messages):
        expected = USER if index % 2 == 0 else ASSISTANT
        if message.get("role") != expected:
            raise ValueError(
                f"message {index}: role {message.get('role')!r}, expected {expected!r} (a conversation "
                "starts with the user and alternates)"
            )
        content = message.get("content")
        if not isinstance(content, str) or not content.strip():
            raise ValueError(f"message {index}: content must be a non-empty string")


class ChatFormat:
    """Conversations rendered with a tokenizer's chat template, with their loss spans and labelled token ids."""

    def __init__(self, tokenizer, source: str = "tokenizer"):
        """`tokenizer`: a Transformers fast tokenizer with a chat template; `source` names it in errors."""
        if not getattr(tokenizer, "chat_template", None):
            raise DataError(
                f"{source}/{TOKENIZER_CONFIG}",
                None,
                "chat_template",
                "the tokenizer has no chat template: instruction-tuning conversations are rendered with "
                "the base model's own template (use an instruction-tuned base model's tokenizer)",
            )
        if tokenizer.eos_token is None:
            raise DataError(f"{source}/{TOKENIZER_CONFIG}", None, "eos_token", "the tokenizer has no EOS token")
        self.tokenizer, self.source = tokenizer, source
        self.backend = tokenizer.backend_tokenizer
        self.end_of_turn = tokenizer.eos_token
        specials = {token.content for token in self.backend.get_added_tokens_decoder().values() if token.special}
        self.special_text = re.compile("|".join(map(re.escape, sorted(specials)))) if specials else None
        self.pieces = self._learn_pieces()

    @classmethod
    def load(cls, model_dir: str | os.PathLike) -> ChatFormat:
        from transformers import AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(model_dir), source=str(Path(model_dir)))

    # ------------------------------------------------------------ rendering
    def template(self, messages: Sequence[dict], add_generation_prompt: bool = False) -> str:
        """The chat template's own rendering (Transformers `apply_chat_template`)."""
        return self.tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=add_generation_prompt
        )

    def prompt_ids(self, messages: Sequence[dict]) -> list[int]:
        """Ids of a conversation ending with a user turn, followed by the generation prompt (what inference feeds)."""
        return self.backend.encode(self.template(messages, add_generation_prompt=True), add_special_tokens=False).ids

    def _loss_span(self, text: str, start: int, end: int) -> tuple[int, int]:
        """The loss span of one assistant turn rendered in text[start:end]: up to and including its end-of-turn
        token (the last one in the turn), or the whole turn when the template writes none."""
        stop = text.rfind(self.end_of_turn, start, end)
        return (start, end) if stop < 0 else (start, stop + len(self.end_of_turn))

    def render_incremental(self, messages: Sequence[dict]) -> RenderedChat:
        """The reference method: render every prefix; assistant turn k is what follows the prompt for turn k
        (`add_generation_prompt`) up to the end of the rendering through turn k."""
        _check_roles(messages)
        spans, text = [], ""
        for end in range(2, len(messages) + 1, 2):
            prompt = self.template(messages[: end - 1], add_generation_prompt=True)
            turn = self.template(messages[:end])
            if not prompt.startswith(text) or not turn.startswith(prompt):
                raise ValueError(
                    f"{self.source}: the chat template is not prefix-stable (rendering a conversation "
                    f"with one more turn changes the text before it, at message {end - 1}), so the "
                    "assistant's tokens cannot be told apart"
                )
            spans.append(self._loss_span(turn, len(prompt), len(turn)))
            text = turn
        return RenderedChat(text, tuple(spans), len(messages) // 2)

    def _learn_pieces(self) -> TemplatePieces | None:
        """The template's fixed pieces, from a probe conversation; None when it does not render that way (every
        conversation then takes `render_incremental`)."""
        probe = []
        for index in range(PROBE_PAIRS):
            probe += [
                {"role": USER, "content": _probe_text(USER, index)},
                {"role": ASSISTANT, "content": _probe_text(ASSISTANT, index)},
            ]
        try:
            full = self.template(probe)
        except Exception as err:  # a template that cannot render a plain conversation at all
            raise DataError(
                f"{self.source}/{TOKENIZER_CONFIG}",
                None,
                "chat_template",
                f"rendering a user/assistant conversation failed: {err}",
            ) from None
        gaps, position = [], 0
        for message in probe:
            found = full.find(message["content"], position)
            if found < 0:
                return None
            gaps.append(full[position:found])
            position = found + len(message["content"])
        gaps.append(full[position:])
        opening, user_to_assistant, assistant_to_user, closing = gaps[0], gaps[1], gaps[2], gaps[-1]
        if (
            any(gap != user_to_assistant for gap in gaps[1:-1:2])
            or any(gap != assistant_to_user for gap in gaps[2:-1:2])
            or not assistant_to_user.startswith(closing)
        ):
            return None
        prompt = self.template(probe[:1], add_generation_prompt=True)
        answer_offset = len(prompt) - len(opening) - len(probe[0]["content"])
        pieces = TemplatePieces(opening, user_to_assistant, assistant_to_user, closing, answer_offset)
        if not 0 <= answer_offset <= len(user_to_assistant) or self._from_pieces(
            probe, pieces
        ) != self.render_incremental(probe):
            return None
        return pieces

    @staticmethod
    def _assemble(messages: Sequence[dict], pieces: TemplatePieces) -> RenderedChat:
        """The text the template would render if it is made of `pieces`, with each assistant turn's whole span."""
        parts, spans, length = [pieces.opening], [], len(pieces.opening)
        pairs = len(messages) // 2
        for index in range(pairs):
            question, answer = messages[2 * index]["content"], messages[2 * index + 1]["content"]
            turn_end = pieces.closing if index == pairs - 1 else pieces.assistant_to_user
            answer_start = length + len(question) + pieces.answer_offset
            parts += [question, pieces.user_to_assistant, answer, turn_end]
            length += len(question) + len(pieces.user_to_assistant) + len(answer) + len(turn_end)
            spans.append((answer_start, length - len(turn_end) + len(pieces.closing)))
        return RenderedChat("".join(parts), tuple(spans), pairs)

    def _from_pieces(self, messages: Sequence[dict], pieces: TemplatePieces) -> RenderedChat:
        assembled = self._assemble(messages, pieces)
        return RenderedChat(
            assembled.text,
            tuple(self._loss_span(assembled.text, start, end) for start, end in assembled.loss_spans),
            assembled.pairs,
        )

    def render(self, messages: Sequence[dict]) -> RenderedChat:
        """The conversation rendered with the chat template, and its loss spans (same result as
        `render_incremental`, with one template call when the template's pieces are known)."""
        _check_roles(messages)
        if self.pieces is None:
            return self.render_incremental(messages)
        rendered = self._from_pieces(messages, self.pieces)
        if rendered.text != self.template(messages):  # e.g. a template that strips or rewrites this content
            return self.render_incremental(messages)
        return rendered

    def has_special_text(self, text: str) -> bool:
        """Whether `text` holds a special token's string (in a message it would be read as that token)."""
        return self.special_text is not None and self.special_text.search(text) is not None

    # ------------------------------------------------------------ tokens
    def encode(self, chats: Sequence[RenderedChat]) -> list[tuple[np.ndarray, np.ndarray]]:
        """(input ids, labels) of each rendered chat, int32; labels are IGNORE_INDEX outside the loss spans."""
        encodings = self.backend.encode_batch([chat.text for chat in chats], add_special_tokens=False)
        return [self._labelled(chat, encoding) for chat, encoding in zip(chats, encodings)]

    @staticmethod
    def _labelled(chat: RenderedChat, encoding) -> tuple[np.ndarray, np.ndarray]:
        ids = np.asarray(encoding.ids, dtype=np.int32)
        labels = np.full(len(ids), IGNORE_INDEX, dtype=np.int32)
        for start, end in chat.loss_spans:
            first, last = encoding.char_to_token(start), encoding.char_to_token(end - 1)
            if first is None or last is None:  # a character no token covers (a normalizer dropped it)
                return ids, ChatFormat._labelled_by_offsets(chat, ids, encoding)
            labels[first : last + 1] = ids[first : last + 1]
        return ids, labels

    @staticmethod
    def _labelled_by_offsets(chat: RenderedChat, ids: np.ndarray, encoding) -> np.ndarray:
        offsets = np.asarray(encoding.offsets, dtype=np.int64).reshape(-1, 2)
        spans = np.asarray(chat.loss_spans, dtype=np.int64).reshape(-1, 2)
        # token [s, e) overlaps span [a, b) when s < b and e > a
        overlaps = (offsets[:, None, 0] < spans[None, :, 1]) & (offsets[:, None, 1] > spans[None, :, 0])
        return np.where(overlaps.any(axis=1), ids, IGNORE_INDEX).astype(np.int32)
