"""The instruction-tuning data stages (docs/method.md#sft-mixture): per-dataset records with drop counts and
provenance (sft_sources), and the mixture (sft_data): held-out slices, caps, weights, the seeded shuffle,
statistics, byte-identical shards for the same seed, the MetaICL guard on the mixture, bad input, the config."""

from __future__ import annotations

import json
import types
from pathlib import Path

import polars as pl
import pytest

from ga import stages
from ga.data.contracts import DataError
from ga.data.sft import mixture
from ga.data.sft.build import RecordBuilder
from ga.data.sft.mixture import prepare_sft_data, sft_source, write_source_records
from ga.data.sft.records import SourceProvenance, conversation, records_frame
from ga.data.sft.sections import SftDataConfig, SftSourcesSectionConfig
from ga.data.sft.sources import SFT_SOURCES
from ga.data.sft.tokenize import load_examples
from ga.format import ContextFormat
from ga.labels import IGNORE_INDEX
from ga.run_config import RunConfig
from ga.section import ConfigError

WINDOW = 64


def fake_source(name: str, rows: list[dict], drops: dict | None = None, licence: str | None = "CC BY 4.0"):
    """A converter module with the real API whose `download` is a no-op and whose records are `rows`."""

    def convert(native, cfg, count_tokens, rng):
        builder = RecordBuilder(name, cfg, count_tokens)
        builder.rows = list(rows)
        frame, _ = builder.result()
        return frame, dict(drops or {})

    return types.SimpleNamespace(
        NAME=name,
        LICENCE=licence,
        download=lambda cfg, cache_dir: None,
        read_native=lambda path: [],
        convert=convert,
        provenance=lambda cfg: SourceProvenance(name, cfg.hub_id, cfg.revision, None, "train", (), licence),
    )


def make_rows(dataset: str, count: int, pairs: int = 2, tag=None) -> list[dict]:
    return [
        {
            "id": f"{dataset}.{i}" + (f".{tag}" if tag else ""),
            "context": f"Passage {i} of {dataset}: " + "the river runs past the old mill. " * (1 + i % 5),
            "conversations": conversation(
                [(f"Question {j} about passage {i}?", f"Answer {j}.") for j in range(1 + i % pairs)]
            ),
            "context_sources": [f"passage:{dataset}-{i}"],
        }
        for i in range(count)
    ]


@pytest.fixture
def registry(monkeypatch):
    """Replace the converters by fake ones: {name: rows}."""
    modules = dict(SFT_SOURCES)

    def install(sources: dict[str, list[dict]], drops: dict | None = None):
        for name, rows in sources.items():
            modules[name] = fake_source(name, rows, (drops or {}).get(name))
        monkeypatch.setattr(mixture, "sft_sources_registry", lambda: modules)

    return install


def write_sources(tmp_path: Path, tokenizer_dir, sources: dict[str, list[dict]], registry, drops=None) -> list[Path]:
    registry(sources, drops)
    settings = SftSourcesSectionConfig()
    return [
        Path(
            write_source_records(settings, name, tokenizer_dir, tmp_path / "sources" / name, tmp_path / "cache")
            and tmp_path / "sources" / name
        )
        for name in sources
    ]


def data_config(datasets, **values) -> SftDataConfig:
    return SftDataConfig.from_dict(
        {
            "datasets": list(datasets),
            "val_records": 2,
            "max_tokens": 1024,
            "examples_per_shard": 7,
            "tokenize_batch_records": 5,
            **values,
        }
    )


def prepare(cfg, dirs, tokenizer_dir, out: Path) -> dict:
    return prepare_sft_data(cfg, WINDOW, dirs, tokenizer_dir, out / "train", out / "val")


SOURCES = {"coqa": make_rows("coqa", 12), "quail": make_rows("quail", 9, pairs=3)}


@pytest.fixture
def sources(tmp_path, tiny_tokenizer_dir, registry) -> list[Path]:
    return write_sources(tmp_path, tiny_tokenizer_dir, SOURCES, registry, drops={"coqa": {"record_no_qa_pairs": 3}})


# ---------------------------------------------------------------- sft_sources
def test_source_records_and_manifest(sources):
    manifest = json.loads((sources[0] / "manifest.json").read_text())
    assert manifest["dataset"] == "coqa" and manifest["records"] == 12
    assert manifest["qa_pairs"] == sum(len(r["conversations"]) // 2 for r in SOURCES["coqa"])
    assert manifest["drops"] == {"record_no_qa_pairs": 3}
    assert manifest["provenance"]["hub_id"] == "stanfordnlp/coqa" and manifest["licence"] == "CC BY 4.0"
    assert manifest["params"] == SftSourcesSectionConfig().source_depends_on("coqa")
    assert pl.read_parquet(sources[0] / "records.parquet")["id"].to_list() == [r["id"] for r in SOURCES["coqa"]]


def test_real_converter_runs_offline_from_its_cached_download(tmp_path, tiny_tokenizer_dir):
    """CoQA's real download code finds its Parquet file in the cache (written in the native layout) and converts."""
    from test_sft_sources import COQA, coqa_row, write_parquet

    from ga.data.hub import cache_folder

    settings = SftSourcesSectionConfig.from_dict({"coqa": {"distractors": 1}})
    cached = cache_folder(tmp_path / "cache", "coqa", None) / "train.parquet"
    cached.parent.mkdir(parents=True)
    write_parquet(
        cached,
        COQA,
        [
            coqa_row("Anna has a red kite.", ["What colour?", "Whose?"], ["Red.", "Anna's."]),
            coqa_row("Ben lives in Oslo.", ["Where?"], ["Oslo."]),
        ],
    )
    manifest = write_source_records(settings, "coqa", tiny_tokenizer_dir, tmp_path / "out", tmp_path / "cache")
    assert manifest["records"] == 2 and manifest["qa_pairs"] == 3
    records = pl.read_parquet(tmp_path / "out" / "records.parquet")
    assert "Anna has a red kite." in records["context"][0]


def test_one_dataset_settings_are_its_job_params():
    base = RunConfig.from_values({"run_name": "x"})
    changed = RunConfig.from_values({"run_name": "x", "sft_sources": {"entity_qa": {"questions_per_record": 2}}})
    assert stages.depends_on("sft_sources", changed, dataset="entity_qa") != stages.depends_on(
        "sft_sources", base, dataset="entity_qa"
    )
    for other in ("synthetic_icl", "synthetic_chat", "coqa"):
        assert stages.depends_on("sft_sources", changed, dataset=other) == stages.depends_on(
            "sft_sources", base, dataset=other
        )
    assert stages.depends_on("sft_data", changed) == stages.depends_on("sft_data", base)
    batch = RunConfig.from_values({"run_name": "x", "sft_data": {"tokenize_batch_records": 3}})
    assert stages.depends_on("sft_data", batch) == stages.depends_on("sft_data", base)


# ---------------------------------------------------------------- sft_data
def test_held_out_slices_statistics_and_layout(sources, tiny_tokenizer_dir, tmp_path):
    cfg = data_config(SOURCES)
    manifests = prepare(cfg, sources, tiny_tokenizer_dir, tmp_path / "out")
    train, val = (load_examples(tmp_path / "out" / split) for split in ("train", "val"))
    train_ids, val_ids = {e["record_id"] for e in train}, {e["record_id"] for e in val}
    assert not train_ids & val_ids
    assert [e["record_id"].split(".")[0] for e in val] == ["coqa"] * 2 + ["quail"] * 2  # dataset after dataset
    assert train_ids | val_ids == {r["id"] for rows in SOURCES.values() for r in rows}
    # statistics, recomputed by hand from the records
    context = ContextFormat.load(tiny_tokenizer_dir)
    for split, examples in (("train", train), ("val", val)):
        rows = {row["dataset"]: row for row in manifests[split]["datasets"]}
        for name in SOURCES:
            records = [r for r in SOURCES[name] if r["id"] in {e["record_id"] for e in examples}]
            lengths = sorted(len(context.ids(r["context"])) for r in records)
            assert rows[name]["records"] == rows[name]["examples"] == len(records)
            assert rows[name]["qa_pairs"] == sum(len(r["conversations"]) // 2 for r in records)
            assert rows[name]["context_tokens_max"] == lengths[-1]
            assert rows[name]["context_tokens_mean"] == round(sum(lengths) / len(lengths), 1)
            assert rows[name]["loss_tokens"] == sum(
                int((e["labels"] != IGNORE_INDEX).sum()) for e in examples if e["dataset"] == name
            )
    drops = manifests["train"]["drops"]
    assert {"dataset": "coqa", "stage": "sft_sources", "reason": "record_no_qa_pairs", "count": 3} in drops
    selection = {row["dataset"]: row for row in manifests["train"]["selection"]}
    assert selection["coqa"] == {
        "dataset": "coqa",
        "available": 12,
        "val_records": 2,
        "capped": 0,
        "train_records": 10,
        "train_examples": 10,
        "weight": 1.0,
    }
    assert "| coqa | 10 | 10 |" in (tmp_path / "out" / "train" / "statistics.md").read_text()
    for example in train + val:
        c = int(example["adapter_prefix"][-1])  # conversation windows are adapted by every context window
        assert example["input_ids"].shape == (len(example["adapter_prefix"]), WINDOW)
        assert (example["labels"][:c] == IGNORE_INDEX).all() and (example["labels"][c:] != IGNORE_INDEX).any()


def test_same_seed_same_bytes_other_seed_other_order(sources, tiny_tokenizer_dir, tmp_path):
    def shard_bytes(out):
        return {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}

    cfg = data_config(SOURCES)
    prepare(cfg, sources, tiny_tokenizer_dir, tmp_path / "a")
    prepare(data_config(SOURCES, tokenize_batch_records=3), sources, tiny_tokenizer_dir, tmp_path / "b")
    assert shard_bytes(tmp_path / "a") == shard_bytes(tmp_path / "b")  # the batch size never changes a byte
    assert len(list((tmp_path / "a" / "train").glob("shard-*.parquet"))) == 3  # 17 examples, 7 per shard
    other = data_config(SOURCES)
    other.seed = 1
    prepare(other, sources, tiny_tokenizer_dir, tmp_path / "c")
    order = [[e["record_id"] for e in load_examples(tmp_path / d / "train")] for d in ("a", "c")]
    assert order[0] != order[1]
    unshuffled = prepare(data_config(SOURCES, shuffle=False), sources, tiny_tokenizer_dir, tmp_path / "d")
    datasets = [e["dataset"] for e in load_examples(tmp_path / "d" / "train")]
    assert datasets == sorted(datasets, key=["coqa", "quail"].index) and unshuffled["train"]["examples"] == 17


def test_caps_and_weights(sources, tiny_tokenizer_dir, tmp_path):
    cfg = data_config(SOURCES, max_records={"coqa": 4}, weights={"quail": 2.0})
    manifests = prepare(cfg, sources, tiny_tokenizer_dir, tmp_path / "out")
    train = [e["record_id"] for e in load_examples(tmp_path / "out" / "train")]
    coqa, quail = [i for i in train if i.startswith("coqa")], [i for i in train if i.startswith("quail")]
    assert len(coqa) == len(set(coqa)) == 4
    assert len(quail) == 14 and all(quail.count(i) == 2 for i in quail)
    selection = {row["dataset"]: row for row in manifests["train"]["selection"]}
    assert selection["coqa"]["capped"] == 6 and selection["quail"]["train_examples"] == 14
    val = [e["record_id"] for e in load_examples(tmp_path / "out" / "val")]
    prepare(data_config(SOURCES), sources, tiny_tokenizer_dir, tmp_path / "plain")
    assert val == [e["record_id"] for e in load_examples(tmp_path / "plain" / "val")]  # caps never move the slice
    half = prepare(data_config(SOURCES, weights={"coqa": 0.5}), sources, tiny_tokenizer_dir, tmp_path / "half")
    kept = {row["dataset"]: row for row in half["train"]["selection"]}["coqa"]["train_examples"]
    assert 1 <= kept <= 9


def test_records_over_the_token_limit_are_dropped_and_counted(tmp_path, tiny_tokenizer_dir, registry):
    rows = make_rows("drop", 6) + [
        {
            "id": "drop.6",
            "context": "long " * 400,
            "conversations": conversation([("Q?", "A.")]),
            "context_sources": ["passage:6"],
        }
    ]
    dirs = write_sources(tmp_path, tiny_tokenizer_dir, {"drop": rows}, registry)
    cfg = data_config(["drop"], val_records=0, max_tokens=4 * WINDOW)
    manifests = prepare(cfg, dirs, tiny_tokenizer_dir, tmp_path / "out")
    assert {"dataset": "drop", "stage": "sft_data", "reason": "record_over_max_tokens", "count": 1} in manifests[
        "train"
    ]["drops"]
    assert manifests["train"]["records"] == 6
    assert manifests["val"]["examples"] == 0 and manifests["val"]["shards"] == []  # val_records: 0, no slice


def test_metaicl_test_task_in_the_mixture_fails_and_writes_nothing(tmp_path, tiny_tokenizer_dir, registry):
    dirs = write_sources(tmp_path, tiny_tokenizer_dir, {"coqa": make_rows("coqa", 5)}, registry)
    leaked = tmp_path / "sources" / "metaicl"
    leaked.mkdir()
    records_frame(make_rows("metaicl", 4, tag="glue-rte")).write_parquet(leaked / "records.parquet")
    (leaked / "manifest.json").write_text(json.dumps({"dataset": "metaicl", "drops": {}}))
    with pytest.raises(DataError, match="'glue-rte' is an HR->LR test task"):
        prepare(data_config(["coqa", "metaicl"]), dirs + [leaked], tiny_tokenizer_dir, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_malformed_record_is_named_and_nothing_is_written(sources, tiny_tokenizer_dir, tmp_path):
    path = sources[1] / "records.parquet"
    frame = pl.read_parquet(path)
    turns = frame["conversations"].to_list()
    turns[3] = [turns[3][1], turns[3][0]]  # assistant first
    frame.with_columns(pl.Series("conversations", turns, dtype=frame.schema["conversations"])).write_parquet(path)
    with pytest.raises(DataError) as err:
        prepare(data_config(SOURCES), sources, tiny_tokenizer_dir, tmp_path / "out")
    assert err.value.file == str(path) and err.value.row == 3 and err.value.column == "conversations"
    assert "user_first_then_alternating" in str(err.value)
    assert not (tmp_path / "out" / "train").exists() and not (tmp_path / "out" / "val").exists()


def test_a_tokenizer_without_chat_template_writes_nothing(sources, tiny_tokenizer_dir, tmp_path):
    import shutil

    plain = tmp_path / "plain_tokenizer"
    shutil.copytree(tiny_tokenizer_dir, plain)
    config_file = plain / "tokenizer_config.json"
    config = json.loads(config_file.read_text())
    config.pop("chat_template", None)
    config_file.write_text(json.dumps(config))
    for extra in plain.glob("chat_template.*"):
        extra.unlink()
    with pytest.raises(DataError) as err:
        prepare(data_config(SOURCES), sources, plain, tmp_path / "out")
    assert err.value.file.endswith("tokenizer_config.json") and err.value.column == "chat_template"
    assert not (tmp_path / "out" / "train").exists()


def test_too_few_records_for_the_held_out_slice(sources, tiny_tokenizer_dir, tmp_path):
    with pytest.raises(DataError, match="val_records=9 are held out"):
        prepare(data_config(SOURCES, val_records=9), sources, tiny_tokenizer_dir, tmp_path / "out")


# ---------------------------------------------------------------- config
@pytest.mark.parametrize(
    "values,message",
    [
        ({"sft_data": {"datasets": ["coqa", "nosuch"]}}, "sft_data.datasets: 'nosuch' is not an instruction-tuning"),
        ({"sft_data": {"datasets": ["coqa"], "max_records": {"drop": 3}}}, "sft_data.max_records: ['drop'] not in"),
        ({"sft_data": {"datasets": ["coqa", "coqa"]}}, "sft_data.datasets: listed more than once"),
        ({"sft_data": {"weights": {"entity_qa": 0}}}, "sft_data.weights.entity_qa: 0 is less than or equal"),
        ({"sft_data": {"max_tokens": 100}}, "sft_data.max_tokens (100) must hold at least two windows"),
        ({"sft_sources": {"entity_qa": {"entities": 12}}}, "sft_sources.entity_qa.entities (12) must equal"),
    ],
    ids=["unknown_dataset", "cap_of_unlisted", "repeated", "zero_weight", "too_few_tokens", "other_entities"],
)
def test_bad_mixture_config_is_rejected_naming_the_key(values, message):
    with pytest.raises(ConfigError) as err:
        RunConfig.from_values({"run_name": "x", **values})
    assert message in str(err.value)


def test_every_dataset_resolves_through_one_registry():
    from ga.data.sft.embedded.registry import EMBEDDED_SOURCES

    for name in (*SFT_SOURCES, *EMBEDDED_SOURCES):
        assert sft_source(name).NAME == name
    assert set(SftSourcesSectionConfig.source_names()) == set(SFT_SOURCES) | set(EMBEDDED_SOURCES)
    config = RunConfig.from_values({"run_name": "x", "seed": 7, "pretrain_data": {"val_fraction": 0.25}})
    block = config.sft_sources.source("entity_qa")
    assert (block.seed, block.val_fraction) == (7, 0.25)  # what the run sets in the generated datasets
    assert config.sft_data.seed == 7 and "seed" not in config.to_dict()["sft_data"]
