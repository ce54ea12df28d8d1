"""The paper's Table 2 validation protocol (ga/train/paper_protocol.py): the scoring layout equals encoding the context
and scoring with the adapted base model, held-out documents are framed and selected as the data stage does, and the
metrics are exp of the mean of per-document mean NLL, the same whatever the batch size or number of processes."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest
import torch
import torch.nn.functional as F
from tiny_models import VOCAB, tiny_gam

from ga.data.config import PretrainDataConfig
from ga.data.examples import load_examples, read_manifest
from ga.data.pretrain import is_validation, prepare_examples
from ga.data.sources import write_documents
from ga.data.tokenize import DocumentTokenizer
from ga.train.paper_protocol import (
    DOCUMENT_WINDOWS,
    TARGETS,
    HeldOutDocuments,
    document_nll,
    held_out_documents,
    paper_protocol,
)

WINDOW = 16
N_DOCUMENTS = 5


@pytest.fixture(scope="module")
def gam():
    return tiny_gam(window=WINDOW).eval()  # a non-zero delta, so the adapter changes the scores


@pytest.fixture(scope="module")
def documents() -> HeldOutDocuments:
    generator = torch.Generator().manual_seed(0)
    windows = torch.randint(0, VOCAB, (N_DOCUMENTS, DOCUMENT_WINDOWS, WINDOW), generator=generator)
    return HeldOutDocuments(windows, [f"doc{i}" for i in range(N_DOCUMENTS)], too_short=3, limit=0)


def mean_nll(logits: torch.Tensor, tokens: torch.Tensor) -> float:
    """Mean NLL of tokens[1:] given logits[:-1] (one window, positions from 0, as in training)."""
    return float(F.cross_entropy(logits[:-1].double(), tokens[1:]))


def test_scoring_layout_equals_encode_then_adapted(gam, documents):
    """One training forward over (first, next, first, next) windows with prefixes (0, 1, 1, 0) gives what encoding the
    first window and scoring each target with the adapted (or plain) base model gives."""
    nll = document_nll(gam, documents.windows)
    for d in range(N_DOCUMENTS):
        first, following = documents.windows[d]
        state = gam.encode(first[None], strategy="sequential")
        with torch.no_grad():
            with gam.adapted(state) as adapted:
                expected = {
                    "completion": mean_nll(adapted(input_ids=following[None]).logits[0], following),
                    "reconstruction": mean_nll(adapted(input_ids=first[None]).logits[0], first),
                }
            expected["none_completion"] = mean_nll(gam.base_model(input_ids=following[None]).logits[0], following)
            expected["none_reconstruction"] = mean_nll(gam.base_model(input_ids=first[None]).logits[0], first)
        for name in TARGETS:
            assert float(nll[name][d]) == pytest.approx(expected[name], abs=1e-4), (name, d)
        assert abs(expected["completion"] - expected["none_completion"]) > 1e-3, "the adapter had no effect"


def test_metrics_are_exp_of_the_mean_document_nll(gam, documents):
    nll = document_nll(gam, documents.windows)
    metrics = paper_protocol(gam, documents, batch_size=2)
    for name in TARGETS:
        assert metrics[f"paper_{name}_loss"] == pytest.approx(float(nll[name].mean()), rel=1e-6)
        assert metrics[f"paper_{name}_ppl"] == pytest.approx(math.exp(float(nll[name].mean())), rel=1e-6)
    assert (metrics["paper_documents"], metrics["paper_documents_too_short"], metrics["paper_documents_limit"]) == (
        N_DOCUMENTS,
        3,
        0,
    )
    whole = paper_protocol(gam, documents, batch_size=N_DOCUMENTS)
    assert whole == pytest.approx(metrics, rel=1e-6)
    assert gam.training is False


def test_no_document_long_enough_reports_counts_only(gam):
    empty = HeldOutDocuments(torch.zeros(0, DOCUMENT_WINDOWS, WINDOW, dtype=torch.long), [], too_short=4, limit=0)
    assert paper_protocol(gam, empty, batch_size=2) == {
        "paper_documents": 0,
        "paper_documents_too_short": 4,
        "paper_documents_limit": 0,
    }


class CountingModel(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model, self.calls = model, 0

    def forward(self, **inputs):
        self.calls += 1
        return self.model(**inputs)


def test_processes_share_documents_and_run_the_same_forward_passes(gam, documents):
    """Two processes (rank 0 and 1) score disjoint shares whose combined sums give the one-process metrics; both run
    the same number of forward passes."""
    single = paper_protocol(gam, documents, batch_size=2)
    partial, calls = [], []
    for rank in (0, 1):
        recorded = []
        dist_info = SimpleNamespace(
            rank=rank,
            world_size=2,
            device=torch.device("cpu"),
            sum=lambda tensor, recorded=recorded: recorded.append(tensor) or tensor,
        )
        counting = CountingModel(gam)
        paper_protocol(counting, documents, batch_size=2, dist_info=dist_info)
        partial.append(recorded[0])
        calls.append(counting.calls)
    combined = partial[0] + partial[1]
    assert calls[0] == calls[1] == 2
    assert int(combined[-1]) == N_DOCUMENTS
    for index, name in enumerate(TARGETS):
        assert float(combined[index] / combined[-1]) == pytest.approx(single[f"paper_{name}_loss"], rel=1e-6)


# --- held-out documents, framed and selected as the data stage does --------------------------------------------

DOC_WINDOW = 8
WORDS = "the river carries stone and silt past the old mill while herons wait in the reeds".split()


@pytest.fixture(scope="module")
def data_stage(tmp_path_factory, tiny_tokenizer_dir):
    """A documents folder (the pretrain_documents stage on local files) and the data stage's val split of it."""
    root = tmp_path_factory.mktemp("paper-protocol")
    source = root / "docs.jsonl"
    with source.open("w") as handle:
        for i in range(24):
            words = [WORDS[(i + k) % len(WORDS)] for k in range(3 + 5 * (i % 5))]  # from far below to far above 2L
            handle.write(json.dumps({"doc_id": f"doc{i:02d}", "text": " ".join(words)}) + "\n")
    settings = PretrainDataConfig.from_dict(
        {
            "source": "local",
            "local": {"paths": [str(source)]},
            "token_budget": None,
            "window": DOC_WINDOW,
            "completion_windows": 2,
            "reconstruction_windows": 0,
            "val_fraction": 0.5,
        }
    )
    write_documents(settings, tiny_tokenizer_dir, root / "documents")
    prepare_examples(settings, root / "documents", tiny_tokenizer_dir, root / "train", root / "val")
    tokenizer = DocumentTokenizer.load(tiny_tokenizer_dir, settings.bos_token, settings.eos_token)
    return SimpleNamespace(root=root, settings=settings, tokenizer=tokenizer)


def stored_held_out(stage) -> pl.DataFrame:
    """Held-out documents in stored order with their token counts (BOS/EOS included), computed independently."""
    manifest = read_manifest(stage.root / "documents")
    documents = pl.concat([pl.read_parquet(stage.root / "documents" / s["file"]) for s in manifest["shards"]])
    settings = stage.settings
    held = documents.filter(
        pl.Series([is_validation(settings.seed, d, settings.val_fraction) for d in documents["doc_id"]])
    )
    return held.with_columns(pl.Series("tokens", stage.tokenizer.count_tokens(held["text"].to_list())))


def test_held_out_documents_are_framed_as_in_the_val_split(data_stage):
    settings = data_stage.settings
    documents = held_out_documents(
        data_stage.root / "documents", data_stage.tokenizer, DOC_WINDOW, settings.seed, settings.val_fraction
    )
    held = stored_held_out(data_stage)
    span = DOCUMENT_WINDOWS * DOC_WINDOW
    long_enough = held.filter(pl.col("tokens") >= span)
    assert 0 < long_enough.height < held.height, "the fixture needs documents on both sides of two windows"
    assert documents.doc_ids == long_enough["doc_id"].to_list()
    assert documents.too_short == held.height - long_enough.height
    assert documents.windows.shape == (long_enough.height, DOCUMENT_WINDOWS, DOC_WINDOW)
    # The val split packs the held-out documents, in stored order, into one token stream: each scored document's
    # windows are that stream's tokens at the document's offset (its BOS first).
    stream = load_examples(data_stage.root / "val")["input_ids"].flatten().numpy()
    offsets = np.concatenate([[0], np.cumsum(held["tokens"].to_numpy())])
    checked = 0
    for doc_id, doc_windows in zip(documents.doc_ids, documents.windows):
        start = int(offsets[held["doc_id"].to_list().index(doc_id)])
        if start + span <= len(stream):
            assert stream[start] == data_stage.tokenizer.bos_id
            assert np.array_equal(stream[start : start + span], doc_windows.flatten().numpy()), doc_id
            checked += 1
    assert checked >= 2


def test_held_out_documents_stop_at_the_limit(data_stage):
    settings = data_stage.settings
    held = stored_held_out(data_stage)
    is_long = (held["tokens"] >= DOCUMENT_WINDOWS * DOC_WINDOW).to_list()
    limit = 2
    last_read = [i for i, long in enumerate(is_long) if long][limit - 1]
    for batch_documents in (1, 3, 1024):
        documents = held_out_documents(
            data_stage.root / "documents",
            data_stage.tokenizer,
            DOC_WINDOW,
            settings.seed,
            settings.val_fraction,
            limit=limit,
            batch_documents=batch_documents,
        )
        assert len(documents) == limit and documents.limit == limit
        assert documents.doc_ids == [d for d, long in zip(held["doc_id"], is_long) if long][:limit]
        assert documents.too_short == sum(not long for long in is_long[: last_read + 1]), batch_documents
