"""Reading a conversation one session at a time into a generated adapter, and what it equals.

A user's sessions arrive one after another; `encode_sessions` folds each into the running `AdapterState` through
`GenerativeAdapter.update` as it comes, the generator's constant-memory streaming (docs/method.md#encoding-a-context),
so a user's adapter is updated per session instead of re-reading the whole history.

The tokens are the whole conversation's context ids (`ContextFormat`: BOS + text + EOS) cut where each session
begins, a later session opening with the separator before it (`session_segments`): concatenated, the sessions' ids
are exactly what sequential encoding reads (and, with a byte-level BPE tokenizer such as SmolLM2's, each later
session's ids are those of its separator and text tokenized on their own, as they would be when the session
arrives). Each session is read in windows of at most `window` tokens, one `update` per window, each window encoded
under the adapter of everything before it.

What equality holds (tests/test_eval_msc.py checks both):
- session streaming gives the state of `sequential` encoding over the session-aligned window grid
  (`session_windows`: every session starts a new window; a session's last window is padded, and padding adds
  nothing), since in both each window is encoded under the adapter of all windows before it;
- hence, when the sessions are window-aligned (every session but the last fills whole windows, `window_aligned`),
  that grid is sequential's own and session streaming equals plain `sequential` encoding of the conversation.
  Otherwise the windows differ (a window of sequential encoding may hold the end of one session and the start of the
  next) and so may the states: session streaming is then its own strategy, not an approximation of sequential.
Equality is up to float rounding (the sums are accumulated in a different order).
"""

from __future__ import annotations

from collections.abc import Sequence

from ga.eval.msc.conversations import Conversation


def session_starts(conversation: Conversation) -> list[int]:
    """Character offsets in `conversation.text` where the second, third, ... session begins: at the separator
    before its text (a session arrives as the separator and its text)."""
    starts, position = [], 0
    for session in conversation.sessions[:-1]:
        position += len(session)
        starts.append(position)
        position += len(conversation.session_separator)
    return starts


def session_segments(context_format, conversation: Conversation) -> list[list[int]]:
    """The conversation's context ids cut where each session begins: one list of ids per session (BOS and the first
    session's text; then the separator and the session's text, EOS after the last), concatenated exactly
    `context_format.ids(text)`."""
    return context_format.segment_ids(conversation.text, session_starts(conversation))


def session_windows(segments: Sequence[Sequence[int]], window: int, pad_id: int) -> tuple[list[int], list[int]]:
    """(ids, attention mask) of the session-aligned window grid: each session's ids padded (mask 0) to a whole
    number of windows. `GenerativeAdapter.encode(ids, mask, strategy="sequential", window=window,
    chunking="fixed")` over it gives the state of `encode_sessions(generator, segments, window)`."""
    ids, mask = [], []
    for segment in segments:
        padding = -len(segment) % window
        ids += list(segment) + [pad_id] * padding
        mask += [1] * len(segment) + [0] * padding
    return ids, mask


def window_aligned(segments: Sequence[Sequence[int]], window: int) -> bool:
    """Whether every session but the last fills whole windows (session streaming then equals sequential)."""
    return all(len(segment) % window == 0 for segment in segments[:-1])


def encode_sessions(generator, segments: Sequence[Sequence[int]], window: int):
    """The AdapterState of the sessions read one at a time, each in windows of at most `window` tokens, one
    `generator.update` per window on the running state."""
    import torch

    state = generator.empty_state()
    for segment in segments:
        for start in range(0, len(segment), window):
            state = generator.update(state, torch.tensor(segment[start : start + window], dtype=torch.long))
    return state
