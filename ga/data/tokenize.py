"""Batched document tokenization with the base model's fast (Rust `tokenizers`) tokenizer, called from Polars."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ga.io import read_json, sha256_file

TOKENIZER_FILE = "tokenizer.json"


@dataclass
class DocumentTokenizer:
    """The base tokenizer's Rust backend plus the ids framing each document (BOS + text tokens + EOS)."""

    backend: object  # tokenizers.Tokenizer
    bos_id: int | None
    eos_id: int | None
    pad_id: int
    vocab_size: int
    source_dir: str

    @classmethod
    def load(cls, model_dir: str | os.PathLike, bos_token: str | None = None, eos_token: str | None = None):
        """Read tokenizer.json (Rust backend) and the special tokens of tokenizer_config.json /
        special_tokens_map.json, as Transformers would, without importing Transformers (or torch)."""
        from tokenizers import Tokenizer

        model_dir = Path(model_dir)
        path = model_dir / TOKENIZER_FILE
        if not path.exists():
            raise FileNotFoundError(
                f"{model_dir}: no {TOKENIZER_FILE}; a fast (tokenizers-backed) tokenizer is required"
            )
        backend = Tokenizer.from_file(str(path))
        specials: dict = {}
        for name in ("special_tokens_map.json", "tokenizer_config.json"):  # the latter wins, as in Transformers
            if (model_dir / name).exists():
                config = read_json(model_dir / name)
                specials.update({k: v for k, v in config.items() if k in ("bos_token", "eos_token", "pad_token")})

        def token_id(key: str, override: str | None) -> int | None:
            token = override if override is not None else specials.get(key)
            if isinstance(token, dict):  # AddedToken serialisation
                token = token.get("content")
            if token is None:
                return None
            index = backend.token_to_id(token)
            if index is None:
                raise ValueError(f"{model_dir}: {key} {token!r} is not in the vocabulary")
            return index

        bos, eos, pad = token_id("bos_token", bos_token), token_id("eos_token", eos_token), token_id("pad_token", None)
        pad = pad if pad is not None else (eos if eos is not None else 0)
        return cls(backend, bos, eos, pad, backend.get_vocab_size(with_added_tokens=True), str(model_dir))

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text without special tokens (`encode_batch_fast` skips offsets when available)."""
        encode_batch = getattr(self.backend, "encode_batch_fast", self.backend.encode_batch)
        return [enc.ids for enc in encode_batch(texts, add_special_tokens=False)]

    @property
    def specials_per_document(self) -> int:
        return int(self.bos_id is not None) + int(self.eos_id is not None)

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(ids) + self.specials_per_document for ids in self.encode(texts)]

    def tokenize_frame(self, documents: pl.DataFrame) -> pl.DataFrame:
        """doc_id, source, text -> doc_id, source, input_ids (List[Int32]: BOS + tokens + EOS)."""
        ids = pl.col("text").map_batches(
            lambda texts: pl.Series(self.encode(texts.to_list()), dtype=pl.List(pl.Int32)),
            return_dtype=pl.List(pl.Int32),
        )
        parts = (
            ([pl.lit([self.bos_id], dtype=pl.List(pl.Int32))] if self.bos_id is not None else [])
            + [ids]
            + ([pl.lit([self.eos_id], dtype=pl.List(pl.Int32))] if self.eos_id is not None else [])
        )
        return documents.select("doc_id", "source", pl.concat_list(parts).alias("input_ids"))

    def describe(self) -> dict:
        path = Path(self.source_dir) / TOKENIZER_FILE
        return {
            "vocab_size": self.vocab_size,
            "bos_id": self.bos_id,
            "eos_id": self.eos_id,
            "pad_id": self.pad_id,
            "tokenizer_json_sha256": sha256_file(path) if path.exists() else None,
        }
