"""The SlimPajama sampler, offline: fixtures in SlimPajama's native layout and record format (a folder laid out
like the hub repository: {split}/chunk{k}/example_{split}_{i}.jsonl.zst with {"text", "meta":
{"redpajama_set_name"}} records), read through the same `datasets.load_dataset(..., streaming=True)` call."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import zstandard

from ga.data.config import SLIMPAJAMA_MIXTURE, PretrainDataConfig
from ga.data.contracts import DataError
from ga.data.sources import write_documents

WORDS = (
    "river",
    "stone",
    "lantern",
    "harbour",
    "orchard",
    "signal",
    "meadow",
    "copper",
    "thread",
    "window",
    "valley",
    "engine",
    "letter",
    "garden",
    "market",
    "bridge",
)
DOCS_PER_SOURCE = 420


def write_fixture(root: Path, records: list[dict], split: str = "train", files: int = 3) -> Path:
    for index in range(files):
        chunk = root / split / f"chunk{index + 1}"
        chunk.mkdir(parents=True, exist_ok=True)
        lines = "".join(json.dumps(r) + "\n" for r in records[index::files])
        (chunk / f"example_{split}_{index}.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(lines.encode()))
    return root


def native_records(seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    records = [
        {
            "text": f"{name} record {i}: " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(15, 30))),
            "meta": {"redpajama_set_name": name},
        }
        for name in SLIMPAJAMA_MIXTURE
        for i in range(DOCS_PER_SOURCE)
    ]
    rng.shuffle(records)  # SlimPajama's files mix the sources
    return records


def slimpajama_settings(dataset: Path, **overrides) -> PretrainDataConfig:
    section = {
        "source": "slimpajama",
        "token_budget": 30_000,
        "tokenize_batch_documents": 64,
        "slimpajama": {"dataset": str(dataset), "revision": None, "split": "train"},
    }
    section.update(overrides)
    return PretrainDataConfig.from_dict(section)


def test_sampler_honours_the_paper_mixture(tmp_path, embedded_dir):
    fixture = write_fixture(tmp_path / "SlimPajama-627B", native_records())
    manifest = write_documents(slimpajama_settings(fixture), embedded_dir, tmp_path / "documents")
    tokens = {s["source"]: s["tokens"] for s in manifest["sources"]}
    assert set(tokens) == set(SLIMPAJAMA_MIXTURE)
    max_doc_tokens = 80  # fixture documents are ~20-60 tokens: a source overshoots its share by < one document
    for name, share in SLIMPAJAMA_MIXTURE.items():
        limit = manifest["budget_limits"][name]
        assert limit == round(30_000 * share / sum(SLIMPAJAMA_MIXTURE.values()))
        assert limit <= tokens[name] < limit + max_doc_tokens, name
    # documents keep SlimPajama's metadata and are in the common raw-document schema
    import polars as pl

    docs = pl.read_parquet(tmp_path / "documents" / "*.parquet")
    assert docs.columns == ["doc_id", "source", "text", "metadata"]
    assert json.loads(docs["metadata"][0])["redpajama_set_name"] == docs["source"][0]


def test_custom_mixture_skips_unlisted_sources(tmp_path, embedded_dir):
    fixture = write_fixture(tmp_path / "sp", native_records(1))
    cfg = slimpajama_settings(fixture, token_budget=4000, mixture={"RedPajamaGithub": 1, "RedPajamaBook": 3})
    manifest = write_documents(cfg, embedded_dir, tmp_path / "documents")
    tokens = {s["source"]: s["tokens"] for s in manifest["sources"]}
    assert set(tokens) == {"RedPajamaGithub", "RedPajamaBook"}
    assert 1000 <= tokens["RedPajamaGithub"] < 1080 and 3000 <= tokens["RedPajamaBook"] < 3080


def test_sampler_is_deterministic(tmp_path, embedded_dir):
    fixture = write_fixture(tmp_path / "sp", native_records(2))
    first = write_documents(slimpajama_settings(fixture, token_budget=5000), embedded_dir, tmp_path / "a")
    second = write_documents(
        slimpajama_settings(fixture, token_budget=5000, tokenize_batch_documents=7), embedded_dir, tmp_path / "b"
    )
    assert first["content_sha256"] == second["content_sha256"]


@pytest.mark.parametrize(
    "record, column",
    [
        ({"text": "fine", "meta": {}}, "meta.redpajama_set_name"),
        ({"text": 7, "meta": {"redpajama_set_name": "RedPajamaC4"}}, "text"),
    ],
)
def test_bad_native_record_names_row_and_column(tmp_path, embedded_dir, record, column):
    good = {"text": "a good record", "meta": {"redpajama_set_name": "RedPajamaC4"}}
    fixture = write_fixture(tmp_path / "sp", [good, good, record], files=1)
    with pytest.raises(DataError) as err:
        write_documents(slimpajama_settings(fixture), embedded_dir, tmp_path / "documents")
    assert err.value.row == 2 and err.value.column == column and "sp" in err.value.file
    assert not (tmp_path / "documents").exists()


def test_hub_call_pins_the_revision():
    # the real configuration: hub id + pinned commit (no network here; check what would be requested)
    cfg = PretrainDataConfig.from_dict({"source": "slimpajama"})
    assert cfg.slimpajama.dataset == "cerebras/SlimPajama-627B"
    assert len(cfg.slimpajama.revision) == 40
    from ga.run_config import RunConfig

    root = Path(__file__).resolve().parents[1]
    for name in ("paper-mistral", "paper-llama2"):  # the resolved config: keys left at their default pin it too
        section = RunConfig.load(root / "config" / f"{name}.yaml").pretrain_data
        assert section.source == "slimpajama" and section.slimpajama.revision == cfg.slimpajama.revision
        assert section.token_budget == 1_000_000_000
        assert section.window * section.completion_windows == 8192
