"""The Parquet type of a `ga.eval.contexts.Question`, shared by the families' files (the knowledge-QA contexts file,
the personalization conversations file)."""

from __future__ import annotations

import polars as pl

QUESTION_DTYPE = pl.Struct({"question_id": pl.Utf8, "question": pl.Utf8, "references": pl.List(pl.Utf8)})
