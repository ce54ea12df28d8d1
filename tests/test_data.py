"""ga.data: window layout, contracts, bad inputs, determinism, sources, entities, loaders (eager and memory-mapped),
document ids per example."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from ga.data import contracts
from ga.data.config import PretrainDataConfig, WindowLayout
from ga.data.contracts import DataError, validate
from ga.data.entities import entity_documents, generate_entities, passages
from ga.data.examples import SplitFormatError, iter_batches, load_examples, nearest_disjoint_example, open_split
from ga.data.pretrain import build_examples, held_out_document, prepare_examples, sequence_documents, span_starts
from ga.data.sources import write_documents
from ga.train.objective import MODEL_INPUT_KEYS

VOCAB = 49152


def settings(**overrides) -> PretrainDataConfig:
    base = dict(
        token_budget=3000,
        window=16,
        completion_windows=4,
        reconstruction_windows=4,
        val_fraction=0.2,
        embedded={"python_docs": True, "entities": 30, "passages_per_entity": 2},
        examples_per_shard=8,
        documents_per_shard=40,
        tokenize_batch_documents=16,
    )
    base.update(overrides)
    return PretrainDataConfig.from_dict(base)


def run_stages(cfg: PretrainDataConfig, tokenizer_dir: Path, out: Path) -> dict:
    write_documents(cfg, tokenizer_dir, out / "documents")
    return prepare_examples(cfg, out / "documents", tokenizer_dir, out / "train", out / "val")


# ------------------------------------------------------------------ layout
def test_hand_checked_tiny_layout():
    """L=4, n=3 completion + m=2 reconstruction windows; spans checked by hand for seed 7."""
    layout = WindowLayout(window=4, completion_windows=3, reconstruction_windows=2)
    sequences = (np.arange(24, dtype=np.int32) + 100).reshape(2, 12)
    df = build_examples(sequences, 0, layout, seed=7, split="train", pad_id=0, doc_ids=[["a"], ["a", "b"]])
    first = df.row(0, named=True)
    # window 3 (j=0): start 1 in [0, 4), length min(4, 4-1) = 3 -> tokens 101..103 then padding
    # window 4 (j=1): start 7 in [0, 8), length min(4, 8-7) = 1 -> token 107 then padding
    assert first["span_start"] == [1, 7] and first["span_length"] == [3, 1]
    assert first["input_ids"] == list(range(100, 112)) + [101, 102, 103, 0] + [107, 0, 0, 0]
    assert first["labels"] == list(range(100, 112)) + [101, 102, 103, -100] + [107, -100, -100, -100]
    assert first["attention_mask"] == [1] * 12 + [1, 1, 1, 0] + [1, 0, 0, 0]
    assert first["adapter_prefix"] == [0, 1, 2, 1, 2]
    second = df.row(1, named=True)
    assert second["span_start"] == [1, 5] and second["span_length"] == [3, 3]
    assert second["input_ids"][12:] == [113, 114, 115, 0, 117, 118, 119, 0]
    validate(contracts.examples_schema(layout, vocab_size=200), df, "hand")


def test_span_starts_cover_their_range_uniformly():
    layout = WindowLayout(window=8, completion_windows=4, reconstruction_windows=4)
    starts = span_starts(3, "train", np.arange(20000), layout)
    for j in range(4):
        counts = np.bincount(starts[:, j], minlength=(j + 1) * 8)
        assert len(counts) == (j + 1) * 8  # never outside [0, (j+1)L)
        expected = 20000 / ((j + 1) * 8)
        assert counts.min() > 0.8 * expected and counts.max() < 1.2 * expected
    # per-example: the same example id gives the same spans whatever batch it is built in
    assert (span_starts(3, "train", np.arange(5, 9), layout) == starts[5:9]).all()
    assert not (span_starts(4, "train", np.arange(20000), layout) == starts).all()
    assert not (span_starts(3, "val", np.arange(20000), layout) == starts).all()


def test_layout_validation():
    with pytest.raises(ValueError, match="reconstruction_windows"):
        WindowLayout(window=8, completion_windows=2, reconstruction_windows=3)
    assert WindowLayout(8, 3, 2).adapter_prefix == [0, 1, 2, 1, 2]
    with pytest.raises(ValueError, match="windwo: unknown key"):
        PretrainDataConfig.from_dict({"windwo": 3})


# ------------------------------------------------------------------ contracts catch bad examples
@pytest.mark.parametrize(
    "corrupt, check",
    [
        (lambda r: r.update(labels=[5] + r["labels"][1:]), "labels_consistent"),
        (lambda r: r.update(adapter_prefix=[0, 0, 2, 1, 2]), "matches_layout"),
        (
            lambda r: r.update(input_ids=[VOCAB] + r["input_ids"][1:], labels=[-100] + r["labels"][1:]),
            "ids_below_vocab",
        ),
        (lambda r: r.update(input_ids=r["input_ids"][:-1]), "length_20"),
        (
            lambda r: r.update(
                input_ids=r["input_ids"][:12] + [999] + r["input_ids"][13:],
                labels=r["labels"][:12] + [999] + r["labels"][13:],
            ),
            "reconstruction_spans",
        ),
        (
            lambda r: r.update(attention_mask=[0] + r["attention_mask"][1:], labels=[-100] + r["labels"][1:]),
            "completion_windows_full",
        ),
        # a real token without a label: the lazy loader derives labels from the mask, so the stored ones must agree
        (lambda r: r.update(labels=[-100] + r["labels"][1:]), "labels_consistent"),
        (lambda r: r.update(doc_ids=[]), "has_documents"),
        (lambda r: r.update(doc_ids=["a", " "]), "document_ids_non_empty"),
        (lambda r: r.update(doc_ids=["a", "a"]), "document_ids_unique_in_example"),
    ],
)
def test_examples_contract_rejects_inconsistent_rows(corrupt, check):
    layout = WindowLayout(window=4, completion_windows=3, reconstruction_windows=2)
    df = build_examples(
        (np.arange(24, dtype=np.int32) + 100).reshape(2, 12), 0, layout, 7, "train", 0, doc_ids=[["a"], ["a", "b"]]
    )
    rows = df.to_dicts()
    corrupt(rows[1])
    bad = pl.DataFrame(rows, schema=df.schema)
    with pytest.raises(DataError) as err:
        validate(contracts.examples_schema(layout, VOCAB), bad, "shard-x.parquet")
    assert check in str(err.value) and "shard-x.parquet" in str(err.value)
    assert err.value.row in (1, None)


def test_tokenized_contract_checks_vocab_and_framing():
    schema = contracts.tokenized_documents_schema(vocab_size=10, bos_id=1, eos_id=2)
    good = pl.DataFrame(
        {"doc_id": ["a"], "source": ["s"], "input_ids": [[1, 5, 2]]}, schema_overrides={"input_ids": pl.List(pl.Int32)}
    )
    validate(schema, good, "f")
    for ids, check in [([1, 12, 2], "ids_below_vocab_size"), ([5, 5, 2], "starts_with_bos"), ([1, 2], "has_tokens")]:
        with pytest.raises(DataError, match=check):
            validate(schema, good.with_columns(pl.Series("input_ids", [ids], dtype=pl.List(pl.Int32))), "f")


# ------------------------------------------------------------------ bad local inputs
def _write(path: Path, content: bytes | str) -> Path:
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


GOOD_LINE = json.dumps({"doc_id": "d0", "text": "A first document about nothing in particular."})


@pytest.mark.parametrize(
    "name, content, row, column, message",
    [
        ("malformed.jsonl", GOOD_LINE + '\n{"text": "unterminated\n', 1, None, "malformed JSON"),
        (
            "missing.jsonl",
            GOOD_LINE + "\n" + json.dumps({"doc_id": "d1", "body": "x"}) + "\n",
            1,
            "body",
            "unexpected column",
        ),
        ("no_text.jsonl", GOOD_LINE + "\n" + json.dumps({"doc_id": "d1"}) + "\n", 1, "text", "missing required column"),
        (
            "extra.jsonl",
            GOOD_LINE + "\n" + json.dumps({"doc_id": "d1", "text": "x y", "lang": "en"}) + "\n",
            1,
            "lang",
            "unexpected column",
        ),
        (
            "type.jsonl",
            GOOD_LINE + "\n" + json.dumps({"doc_id": "d1", "text": 42}) + "\n",
            1,
            "text",
            "expected a string",
        ),
        (
            "empty.jsonl",
            GOOD_LINE + "\n" + json.dumps({"doc_id": "d1", "text": "  \n "}) + "\n",
            1,
            "text",
            "non_empty_string",
        ),
        ("utf8.jsonl", GOOD_LINE.encode() + b'\n{"doc_id": "d1", "text": "caf\xe9 bad"}\n', 1, "text", "invalid UTF-8"),
        ("dup.jsonl", GOOD_LINE + "\n" + GOOD_LINE + "\n", 1, "doc_id", "duplicate"),
        ("utf8.txt", b"fine line\nbroken \xff line\n", 1, "text", "invalid UTF-8"),
    ],
)
def test_bad_local_input_names_file_row_column_and_leaves_no_output(
    tmp_path, tiny_tokenizer_dir, name, content, row, column, message
):
    path = _write(tmp_path / name, content)
    cfg = settings(source="local", local={"paths": [str(path)]}, token_budget=None)
    out = tmp_path / "out" / "documents"
    with pytest.raises(DataError) as err:
        write_documents(cfg, tiny_tokenizer_dir, out)
    assert (err.value.file, err.value.row, err.value.column) == (str(path), row, column)
    assert message in str(err.value)
    assert not out.exists() and list((tmp_path / "out").iterdir()) == []  # no partial output, no temp dirs


@pytest.mark.parametrize(
    "frame, row, column, message",
    [
        (
            pl.DataFrame({"doc_id": ["a", "b"], "text": ["ok text", "more"], "extra": [1, 2]}),
            0,
            "extra",
            "unexpected column",
        ),
        (pl.DataFrame({"doc_id": ["a", "b"], "body": ["ok", "x"]}), 0, "body", "unexpected column"),
        (pl.DataFrame({"doc_id": ["a"], "source": ["s"]}), 0, "text", "missing required column"),
        (
            pl.DataFrame({"doc_id": ["a", "b"], "text": [None, 3]}, schema={"doc_id": pl.Utf8, "text": pl.Int64}),
            1,
            "text",
            "expected strings",
        ),
        (pl.DataFrame({"doc_id": ["a", "b", "c"], "text": ["ok", "fine", ""]}), 2, "text", "non_empty_string"),
    ],
)
def test_bad_parquet_input(tmp_path, tiny_tokenizer_dir, frame, row, column, message):
    path = tmp_path / "docs.parquet"
    frame.write_parquet(path)
    cfg = settings(source="local", local={"paths": [str(path)]}, token_budget=None)
    with pytest.raises(DataError) as err:
        write_documents(cfg, tiny_tokenizer_dir, tmp_path / "documents")
    assert (err.value.file, err.value.row, err.value.column) == (str(path), row, column)
    assert message in str(err.value)
    assert not (tmp_path / "documents").exists()


def test_local_folder_of_mixed_files(tmp_path, tiny_tokenizer_dir):
    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir(parents=True)
    _write(
        corpus / "a.jsonl",
        "\n".join(json.dumps({"text": f"JSON line number {i} says hello."}) for i in range(5)) + "\n",
    )
    pl.DataFrame({"doc_id": ["p1", "p2"], "text": ["Parquet one.", "Parquet two."]}).write_parquet(
        corpus / "sub" / "b.parquet"
    )
    _write(corpus / "sub" / "c.txt", "A whole plain-text file is one document.\n")
    cfg = settings(source="local", local={"paths": [str(corpus)]}, token_budget=None)
    manifest = write_documents(cfg, tiny_tokenizer_dir, tmp_path / "documents")
    assert manifest["documents"] == 8 and manifest["sources"][0]["source"] == "local"
    docs = pl.read_parquet(tmp_path / "documents" / "*.parquet")
    assert f"{corpus / 'a.jsonl'}:3" in docs["doc_id"].to_list() and "p2" in docs["doc_id"].to_list()


# ------------------------------------------------------------------ end to end on the embedded corpus
def test_embedded_stages_are_deterministic_and_split_by_document(tmp_path, tiny_tokenizer_dir):
    cfg = settings(token_budget=6000)
    first = run_stages(cfg, tiny_tokenizer_dir, tmp_path / "a")
    # a different chunk size must not change a byte
    second = run_stages(settings(token_budget=6000, tokenize_batch_documents=5), tiny_tokenizer_dir, tmp_path / "b")
    for split in ("train", "val"):
        assert first[split]["content_sha256"] == second[split]["content_sha256"]
        for shard in first[split]["shards"]:
            for file in (shard["file"], shard["arrow_file"]):
                assert (tmp_path / "a" / split / file).read_bytes() == (tmp_path / "b" / split / file).read_bytes()
        assert (tmp_path / "a" / split / "manifest.json").read_bytes() == (
            tmp_path / "b" / split / "manifest.json"
        ).read_bytes()
    assert first["train"]["examples"] >= 8 and first["val"]["examples"] >= 1
    assert len(first["train"]["shards"]) >= 2  # examples_per_shard=8: streaming writes several shards
    # held-out documents never reach training; both sub-sources appear
    docs = pl.read_parquet(tmp_path / "a" / "documents" / "*.parquet")
    val_ids = {d for d in docs["doc_id"] if held_out_document(0, d, 0.2)}
    assert 0 < len(val_ids) < docs.height
    assert {s["source"] for s in first["train"]["sources"]} == {"python_docs", "fictional_entities"}
    assert first["train"]["documents"] + first["val"]["documents"] == docs.height
    assert first["val"]["documents"] == len(val_ids)
    # another seed gives other data
    third = run_stages(settings(token_budget=6000, seed=1), tiny_tokenizer_dir, tmp_path / "c")
    assert third["train"]["content_sha256"] != first["train"]["content_sha256"]


def test_embedded_mixture_and_budget(tmp_path, tiny_tokenizer_dir):
    cfg = settings(token_budget=4000, mixture={"python_docs": 0.25, "fictional_entities": 0.75})
    manifest = write_documents(cfg, tiny_tokenizer_dir, tmp_path / "documents")
    tokens = {s["source"]: s["tokens"] for s in manifest["sources"]}
    assert 1000 <= tokens["python_docs"] < 1000 + 3000  # a doc may overshoot its share by less than one doc
    assert 3000 <= tokens["fictional_entities"] < 3000 + 200


def test_loader_shapes_and_batches(tmp_path, tiny_tokenizer_dir):
    cfg = settings()
    manifests = run_stages(cfg, tiny_tokenizer_dir, tmp_path)
    data = load_examples(tmp_path / "train")
    n_examples, S, L = manifests["train"]["examples"], 8, 16
    assert data["input_ids"].shape == (n_examples, S, L) and data["adapter_prefix"].shape == (n_examples, S)
    assert data["input_ids"].dtype == data["labels"].dtype == data["attention_mask"].dtype == __import__("torch").long
    assert data["adapter_prefix"][0].tolist() == [0, 1, 2, 3, 1, 2, 3, 4]
    assert data["example_id"].tolist() == list(range(n_examples))
    # completion windows = the packed sequence, recon window labels masked exactly where padding
    assert (data["labels"][:, :4] == data["input_ids"][:, :4]).all()
    assert ((data["labels"] == -100) == (data["attention_mask"] == 0)).all()
    batches = list(iter_batches(tmp_path / "train", batch_size=3))
    assert sum(len(b["example_id"]) for b in batches) == n_examples and all(
        b["input_ids"].shape[1:] == (S, L) for b in batches
    )
    assert __import__("torch").cat([b["example_id"] for b in batches]).tolist() == list(range(n_examples))
    shuffled = [b["example_id"] for b in iter_batches(tmp_path / "train", batch_size=3, shuffle_seed=5)]
    again = [b["example_id"] for b in iter_batches(tmp_path / "train", batch_size=3, shuffle_seed=5)]
    order = __import__("torch").cat(shuffled).tolist()
    assert sorted(order) == list(range(n_examples)) and order != list(range(n_examples))
    assert all((a == b).all() for a, b in zip(shuffled, again))
    assert all(len(b["example_id"]) == 3 for b in iter_batches(tmp_path / "train", batch_size=3, drop_last=True))


def test_too_little_data_is_a_clear_error_without_output(tmp_path, tiny_tokenizer_dir):
    cfg = settings(token_budget=100, window=64, completion_windows=8, reconstruction_windows=8)
    write_documents(cfg, tiny_tokenizer_dir, tmp_path / "documents")
    with pytest.raises(DataError, match="not enough tokens"):
        prepare_examples(cfg, tmp_path / "documents", tiny_tokenizer_dir, tmp_path / "train", tmp_path / "val")
    assert not (tmp_path / "train").exists() and not (tmp_path / "val").exists()


# ------------------------------------------------------------------ entities
def test_entities_are_seeded_prefix_stable_and_passages_state_every_fact():
    entities = generate_entities(30, seed=3)
    assert generate_entities(30, seed=3) == entities
    assert generate_entities(10, seed=3) == entities[:10]
    assert generate_entities(30, seed=4) != entities
    assert len({e.name for e in entities}) == 30
    assert {e.kind for e in entities} == {"person", "organisation", "place"}
    for entity in entities:
        texts = passages(entity, 3, seed=3)
        assert len(set(texts)) > 1  # varied wording
        for text in texts:
            for fact in entity.facts:
                assert fact.value in text and fact.question.endswith("?")
    docs = entity_documents(entities[:2], 2, seed=3)
    assert [d["doc_id"] for d in docs] == [
        "fictional_entities/entity-000000/0",
        "fictional_entities/entity-000000/1",
        "fictional_entities/entity-000001/0",
        "fictional_entities/entity-000001/1",
    ]
    validate(contracts.RAW_DOCUMENTS, pl.DataFrame(docs), "entities")


def test_tokenizer_matches_transformers(embedded_dir, tiny_model_dir):
    """The light loader (no Transformers import) finds the same special ids and vocabulary as AutoTokenizer."""
    from transformers import AutoTokenizer

    from ga.data.tokenize import DocumentTokenizer

    for model_dir in (embedded_dir, tiny_model_dir):
        ours, theirs = DocumentTokenizer.load(model_dir), AutoTokenizer.from_pretrained(str(model_dir))
        assert (ours.bos_id, ours.eos_id, ours.vocab_size) == (theirs.bos_token_id, theirs.eos_token_id, len(theirs))
        text = "Generative adapters encode a context into weights."
        assert ours.encode([text])[0] == theirs(text, add_special_tokens=False)["input_ids"]
    with pytest.raises(ValueError, match="not in the vocabulary"):
        DocumentTokenizer.load(embedded_dir, bos_token="<no-such-token>")


# ------------------------------------------------------------------ lazy loader (training) and document ids
@pytest.fixture(scope="module")
def embedded_split(tmp_path_factory, tiny_tokenizer_dir):
    """(settings, folder, manifests) of train/val splits of the embedded corpus; its long documents continue over
    several examples."""
    out = tmp_path_factory.mktemp("embedded")
    cfg = settings(token_budget=6000)
    return cfg, out, run_stages(cfg, tiny_tokenizer_dir, out)


def test_sequence_documents_hand_checked():
    # documents of 5, 3, 10 and 2 tokens; sequences of 4 tokens
    ends = np.cumsum([5, 3, 10, 2])
    assert sequence_documents(ends, ["d0", "d1", "d2", "d3"], 5, 4) == [
        ["d0"],
        ["d0", "d1"],
        ["d2"],
        ["d2"],
        ["d2", "d3"],
    ]


def test_open_split_reads_exactly_what_load_examples_loads(embedded_split):
    """Training inputs from the lazy loader are the eager loader's, element by element, dtypes included."""
    _, out, manifests = embedded_split
    for split in ("train", "val"):
        lazy, manifest = open_split(out / split)
        eager = load_examples(out / split)
        assert manifest == manifests[split] and len(lazy) == manifest["examples"] == len(eager["example_id"])
        for i in range(len(lazy)):
            item = lazy[i]
            for key in MODEL_INPUT_KEYS:
                assert item[key].dtype == eager[key].dtype and torch.equal(item[key], eager[key][i]), (split, i, key)
            assert int(item["example_id"]) == int(eager["example_id"][i]) == i
        assert torch.equal(lazy[-1]["input_ids"], eager["input_ids"][-1])
        with pytest.raises(IndexError):
            lazy[len(lazy)]


def test_doc_ids_name_the_documents_each_example_holds(embedded_split, tiny_tokenizer_dir):
    """Rebuilt independently of the writer: each split's documents in stored order, tokenized, cut into sequences."""
    from ga.data.tokenize import DocumentTokenizer

    cfg, out, manifests = embedded_split
    documents_manifest = json.loads((out / "documents" / "manifest.json").read_text())
    docs = pl.concat([pl.read_parquet(out / "documents" / s["file"]) for s in documents_manifest["shards"]])
    tokenizer = DocumentTokenizer.load(tiny_tokenizer_dir, cfg.bos_token, cfg.eos_token)
    seq_len, n = cfg.layout.seq_len, cfg.layout.completion_windows
    for split in ("train", "val"):
        in_val = pl.Series([held_out_document(cfg.seed, d, cfg.val_fraction) for d in docs["doc_id"]])
        tokenized = tokenizer.tokenize_frame(docs.filter(in_val if split == "val" else ~in_val))
        stream = tokenized["input_ids"].explode().to_numpy()
        owner = np.repeat(tokenized["doc_id"].to_numpy(), tokenized["input_ids"].list.len().to_numpy())
        lazy, manifest = open_split(out / split)
        stored = pl.read_parquet(out / split / "*.parquet")["doc_ids"].to_list()
        eager = load_examples(out / split)
        for k in range(len(lazy)):
            assert (stream[k * seq_len : (k + 1) * seq_len] == eager["input_ids"][k, :n].flatten().numpy()).all()
            expected = list(dict.fromkeys(owner[k * seq_len : (k + 1) * seq_len]))
            assert lazy.documents(k) == stored[k] == expected, (split, k)
        documents = [lazy.documents(k) for k in range(len(lazy))]
        assert manifest["document_ids"] == {
            "column": "doc_ids",
            "max_documents_per_example": max(map(len, documents)),
            "examples_continuing_into_the_next": sum(a[-1] == b[0] for a, b in zip(documents, documents[1:])),
        }


def test_donors_share_no_document_with_their_receiver(embedded_split):
    """The other-context donor: the nearest later example (cyclically) of a disjoint document set."""
    _, out, _ = embedded_split
    for split in ("val", "train"):
        examples, _ = open_split(out / split)
        n = len(examples)
        documents = [set(examples.documents(i)) for i in range(n)]
        # the control this replaces (donor = next example) would have shared documents here
        assert any(documents[i] & documents[(i + 1) % n] for i in range(n))
        donors = [examples.donor_for(i) for i in range(n)]
        for receiver, donor in enumerate(donors):
            assert donor != receiver and not documents[donor] & documents[receiver], (split, receiver, donor)
            between = [(receiver + step) % n for step in range(1, (donor - receiver) % n)]
            assert all(documents[j] & documents[receiver] for j in between), (split, receiver, donor)
        assert [open_split(out / split)[0].donor_for(i) for i in range(n)] == donors


def test_no_disjoint_donor_is_a_clear_error():
    documents = [frozenset({"a"}), frozenset({"a", "b"}), frozenset({"b"}), frozenset({"c"})]
    assert [nearest_disjoint_example(documents, i) for i in range(4)] == [2, 3, 3, 0]
    with pytest.raises(ValueError, match="example 1 shares a document with every other example"):
        nearest_disjoint_example(documents[:3], 1)


def test_split_without_arrow_copies_is_a_clear_error(embedded_split, tmp_path):
    _, out, manifests = embedded_split
    with pytest.raises(SplitFormatError, match="run the pretrain_data stage first"):
        open_split(tmp_path)
    old = dict(
        manifests["val"],
        shards=[{key: shard[key] for key in ("file", "rows", "sha256")} for shard in manifests["val"]["shards"]],
    )
    (tmp_path / "manifest.json").write_text(json.dumps(old))
    with pytest.raises(SplitFormatError, match="no Arrow copy .* rerun the pretrain_data stage"):
        open_split(tmp_path)


RSS_LAYOUT = WindowLayout(window=64, completion_windows=8, reconstruction_windows=8)
"""The embedded default's layout (config/config.yaml)."""
RSS_SMALL_EXAMPLES, RSS_SCALE = 400, 20
RSS_RANDOM_READS, RSS_READ_BATCH = 512, 8
RSS_MARGIN_MB = 50
RSS_READER = """
import sys
import numpy as np
from ga.data.examples import open_split
from ga.train.objective import PretrainObjective

examples, manifest = open_split(sys.argv[1])
objective = PretrainObjective(manifest["layout"]["completion_windows"])
reads, batch = int(sys.argv[2]), int(sys.argv[3])
for indices in np.random.default_rng(0).integers(0, len(examples), size=(reads // batch, batch)):
    objective.collate([examples[int(i)] for i in indices])
print(dict(line.split(":") for line in open("/proc/self/status"))["VmHWM"].split()[0])  # peak RSS, KiB
"""
# VmHWM, the peak of the process's own memory: getrusage's ru_maxrss of a freshly started process starts at the
# peak of the process that started it (Linux carries it over at exec), here pytest's.


def eager_bytes_per_example(layout: WindowLayout) -> int:
    """Host bytes of one example in `load_examples`' int64 tensors: input_ids, attention_mask, labels, adapter_prefix,
    example_id."""
    return 8 * (3 * layout.num_windows * layout.window + layout.num_windows + 1)


@pytest.mark.slow
def test_peak_rss_does_not_grow_with_the_number_of_examples(tmp_path, tiny_tokenizer_dir):
    """A process reading the same number of random examples from a split 20x larger peaks at the same RSS."""
    from ga.testing.train_data import write_token_split

    peaks_mb, sizes = [], []
    for examples in (RSS_SMALL_EXAMPLES, RSS_SCALE * RSS_SMALL_EXAMPLES):
        manifest = write_token_split(tmp_path / str(examples), examples, RSS_LAYOUT, tiny_tokenizer_dir, seed=0)
        reader = subprocess.run(
            [
                sys.executable,
                "-c",
                RSS_READER,
                str(tmp_path / str(examples)),
                str(RSS_RANDOM_READS),
                str(RSS_READ_BATCH),
            ],
            capture_output=True,
            text=True,
        )
        assert reader.returncode == 0, reader.stderr[-3000:]
        peaks_mb.append(int(reader.stdout.split()[-1]) / 1024)
        sizes.append(manifest["examples"])
    # what the eager loader would have added at rest for the extra examples: the margin is far below it
    eager_growth_mb = (sizes[1] - sizes[0]) * eager_bytes_per_example(RSS_LAYOUT) / 2**20
    assert eager_growth_mb > 3 * RSS_MARGIN_MB, eager_growth_mb
    assert peaks_mb[1] < peaks_mb[0] + RSS_MARGIN_MB, (sizes, peaks_mb, eager_growth_mb)
    print(
        f"peak RSS {peaks_mb[0]:.1f} MB at {sizes[0]} examples, {peaks_mb[1]:.1f} MB at {sizes[1]}; "
        f"eager int64 tensors would add {eager_growth_mb:.0f} MB"
    )
