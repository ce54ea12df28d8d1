"""Context files as token windows, read in blocks so that memory stays bounded whatever a file's length.

Several files make one context: each file is framed as `ContextFormat` frames a context (BOS + its tokens + EOS, as
instruction tuning and evaluation encode contexts), the files' ids follow one another, and the stream is cut into
windows of the generator's window length across file boundaries. So adapting files one window at a time gives
exactly `GenerativeAdapter.encode(all_ids, strategy="streaming", window=W, chunking="fixed")` of their concatenated
ids (tests/test_app.py checks it).

A block of text is tokenized up to the start of its last pre-token (the tokenizer's own split into words), and the
rest is carried into the next block: tokens never cross pre-token boundaries, so the blocks' ids are exactly the
whole file's ids. A tokenizer without a pre-tokenizer (merges may cross any boundary) reads each file in one block.
"""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ga.errors import UnreadableFile

READ_BLOCK_CHARS = 1 << 16
"""Characters decoded and tokenized at a time (64K): bounds memory whatever the file's length, and large enough that
the per-block cost of the tokenizer call is negligible."""
SNIFF_BYTES = 8192
"""Bytes read from each file before any model is loaded, to reject binary and empty files at once."""


@dataclass
class ContextFile:
    """One file read as context: what the adapter file records about it."""

    path: Path
    bytes: int
    tokens: int = 0
    sha256: str = ""

    def record(self, with_path: bool = False) -> dict:
        """What identifies the file: its name, size, tokens and hash; its absolute path only `with_path`."""
        record = {"name": self.path.name, "bytes": self.bytes, "tokens": self.tokens, "sha256": self.sha256}
        return {"file": str(self.path), **record} if with_path else record


def check_context_file(path: str | Path) -> ContextFile:
    """A context file that exists, is a file, and starts as non-empty UTF-8 text; else one `UnreadableFile`."""
    path = Path(path)
    if not path.exists():
        raise UnreadableFile(f"{path}: does not exist")
    if not path.is_file():
        raise UnreadableFile(f"{path}: not a file (give text files as --context)")
    size = path.stat().st_size
    if size == 0:
        raise UnreadableFile(f"{path}: empty file (nothing to adapt to)")
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    _check_text(path, codecs.getincrementaldecoder("utf-8")(), head, 0, final=len(head) == size)
    return ContextFile(path.absolute(), size)


def _check_text(path: Path, decoder, data: bytes, offset: int, final: bool) -> str:
    """`data` (at byte `offset` of the file) decoded, or an `UnreadableFile` for bytes that are not text."""
    try:
        text = decoder.decode(data, final=final)
    except UnicodeDecodeError as err:
        raise UnreadableFile(
            f"{path}: not a UTF-8 text file (invalid byte at offset {offset + err.start}); convert it to text first"
        ) from None
    if "\0" in text:  # valid UTF-8, but no text holds NUL: a binary file
        raise UnreadableFile(f"{path}: a binary file, not text (NUL byte at offset {offset + data.index(0)})")
    return text


def text_blocks(file: ContextFile, block_chars: int, on_bytes: Callable[[int], None] | None = None) -> Iterator[str]:
    """The file's text in blocks of about `block_chars` characters, decoded incrementally (a character split between
    reads is completed by the next); sets `file.sha256`. A non-text byte anywhere raises `UnreadableFile`."""
    decoder, digest, offset = codecs.getincrementaldecoder("utf-8")(), hashlib.sha256(), 0
    with open(file.path, "rb") as handle:
        while True:
            data = handle.read(block_chars)
            final = len(data) < block_chars
            text = _check_text(file.path, decoder, data, offset, final)
            digest.update(data)
            offset += len(data)
            if on_bytes is not None:
                on_bytes(len(data))
            if text:
                yield text
            if final:
                break
    file.sha256 = digest.hexdigest()


class ContextTokenizer:
    """Token ids of context files, framed and split exactly as `ContextFormat.ids` frames one whole text."""

    def __init__(self, context_format, block_chars: int = READ_BLOCK_CHARS):
        """`context_format`: a `ga.format.ContextFormat` (its backend reads special-token strings as
        text)."""
        self.format, self.block_chars = context_format, block_chars
        self.pre_tokenizer = context_format.backend.pre_tokenizer

    def _encode(self, text: str) -> list[int]:
        return self.format.backend.encode(text, add_special_tokens=False).ids

    def file_ids(self, file: ContextFile, on_bytes: Callable[[int], None] | None = None) -> Iterator[list[int]]:
        """The file's ids in pieces: BOS, the text's tokens block by block, EOS; counts them in `file.tokens`."""
        head = [self.format.bos_id] if self.format.bos_id is not None else []
        tail = [self.format.eos_id] if self.format.eos_id is not None else []
        block_chars = self.block_chars if self.pre_tokenizer is not None else 1 << 62  # see the module doc
        carry, count, blank = "", len(head) + len(tail), True
        yield head
        for block in text_blocks(file, block_chars, on_bytes):
            blank = blank and not block.strip()
            text = carry + block
            pieces = self.pre_tokenizer.pre_tokenize_str(text) if self.pre_tokenizer is not None else []
            cut = pieces[-1][1][0] if len(pieces) > 1 else 0  # the last pre-token may continue in the next block
            if cut > 0:
                ids = self._encode(text[:cut])
                count += len(ids)
                yield ids
            carry = text[cut:]
        if blank:
            raise UnreadableFile(f"{file.path}: holds only white space (nothing to adapt to)")
        ids = self._encode(carry) if carry else []
        file.tokens = count + len(ids)
        yield ids + tail


def windows(pieces: Iterable[list[int]], window: int) -> Iterator[list[int]]:
    """The concatenated ids of `pieces` cut into windows of `window` ids (the last one shorter)."""
    buffer: list[int] = []
    for ids in pieces:
        buffer.extend(ids)
        while len(buffer) >= window:
            yield buffer[:window]
            del buffer[:window]
    if buffer:
        yield buffer
