"""The instruction-tuning mixture (docs/method.md#sft-mixture): the registry of dataset converters, and the work of
the two data stages. Their config sections, `sft_sources` and `sft_data`, are in ga/data/sft/sections.py.

- `sft_source(name)`: a dataset's converter module (the real sources, `ga.data.sft.sources.SFT_SOURCES`, and the
  embedded twin's generated datasets, `ga.data.sft.embedded.registry.EMBEDDED_SOURCES`); every module has the
  converter API of `ga.data.sft.sources`.
- `write_source_records` (stage sft_sources, one job per dataset): download or generate, convert, check against
  the record contract, write `records.parquet` + `manifest.json` (records, QA pairs, drops by reason, provenance
  and licence).
- `prepare_sft_data` (stage sft_data): the datasets' records -> a held-out validation slice per dataset (a seeded
  hash of the record id picks it, so it never depends on file order), per-dataset caps and weights on the rest, a
  seeded shuffle of the training mixture (the authors concatenated the datasets in order), the MetaICL test-task
  guard on everything, tokenization (ga/data/sft/tokenize.py), and train/ + val/ Parquet shards with manifests
  that give per-dataset statistics: records, QA pairs, context and conversation tokens (mean, p50, p95, max), and
  what every filter dropped and why.
- `build_mixture`: both stages in one call (tests, benchmarks).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from types import ModuleType

import pandera.polars as pa
import polars as pl

from ga.data.contracts import MANIFEST_SHARDS, DataError, validate
from ga.data.parquet import read_parquet, shard_name, write_parquet
from ga.data.sft.build import seeded_rng
from ga.data.sft.embedded.registry import EMBEDDED_SOURCES
from ga.data.sft.metaicl_split import METAICL_DATASET, check_no_test_tasks
from ga.data.sft.records import RECORD_SCHEMA, provenance_frame, validate_records
from ga.data.sft.sections import SftDataConfig
from ga.data.sft.sources import SFT_SOURCES
from ga.data.sources import hash_order_key
from ga.io import atomic_dir, read_json, sha256_file, sha256_json, write_json, write_text

RECORDS_FILE = "records.parquet"
MANIFEST = "manifest.json"
STATISTICS_FILE = "statistics.md"
SPLITS = ("train", "val")
QUANTILES = (("p50", 0.5), ("p95", 0.95))
_HASH_SPACE = 1 << 64


# ---------------------------------------------------------------- registry
def sft_sources_registry() -> dict[str, ModuleType]:
    """Every dataset converter by name: the real sources and the embedded twin's generated datasets."""
    return {**SFT_SOURCES, **EMBEDDED_SOURCES}


def sft_source(name: str) -> ModuleType:
    """The converter module of dataset `name` (the one lookup every stage uses)."""
    registry = sft_sources_registry()
    if name not in registry:
        raise KeyError(f"{name!r} is not an instruction-tuning dataset (known: {', '.join(sorted(registry))})")
    return registry[name]


# ---------------------------------------------------------------- stage sft_sources
def token_counter(model_dir: str | os.PathLike):
    """Count base-model tokens of a text as the context formatter reads it (plain text, no framing)."""
    from ga.format import ContextFormat

    backend = ContextFormat.load(model_dir).backend
    return lambda text: len(backend.encode(text, add_special_tokens=False).ids)


def write_source_records(
    sources, name: str, tokenizer_dir: str | os.PathLike, out_dir: str | os.PathLike, cache_dir: str | os.PathLike
) -> dict:
    """One dataset: download (or generate) into `cache_dir`, convert, check, write `out_dir` (records + manifest).

    `sources` is the `sft_sources` section; its `source(name)` block (token limits resolved) drives the converter."""
    from ga.data.tokenize import DocumentTokenizer

    module = sft_source(name)
    cfg = sources.source(name)
    native = module.download(cfg, cache_dir)
    records, drops = module.convert(
        module.read_native(native), cfg, token_counter(tokenizer_dir), seeded_rng(sources.seed, name)
    )
    label = f"{out_dir}/{RECORDS_FILE}"
    validate_records(records, label, dataset=name)
    if name == METAICL_DATASET:
        check_no_test_tasks(records, label)
    if records.height == 0:
        raise DataError(label, None, None, f"no {name} record is left after the filters (drops: {drops})")
    provenance = provenance_frame([module.provenance(cfg)]).to_dicts()[0]
    with atomic_dir(out_dir) as tmp:
        write_parquet(records, tmp / RECORDS_FILE)
        manifest = {
            "kind": "sft_source_records",
            "dataset": name,
            "records": records.height,
            "qa_pairs": int(records["conversations"].list.len().sum()) // 2,
            "drops": dict(sorted(drops.items())),
            "provenance": provenance,
            "licence": provenance["licence"],
            "params": sources.source_depends_on(name),
            "tokenizer": DocumentTokenizer.load(tokenizer_dir).describe(),
            "file": RECORDS_FILE,
            "sha256": sha256_file(tmp / RECORDS_FILE),
        }
        write_json(manifest, tmp / MANIFEST)
    return manifest


# ---------------------------------------------------------------- stage sft_data: selection
def read_source_records(source_dirs: list[str | os.PathLike], datasets: list[str]) -> tuple[pl.DataFrame, dict]:
    """The records of every dataset folder (checked against the record contract), with a `dataset` column, in
    `datasets` order; and each folder's manifest by dataset."""
    manifests, frames = {}, {}
    for folder in map(Path, source_dirs):
        manifest = read_json(folder / MANIFEST)
        name = manifest["dataset"]
        if name not in datasets:
            raise DataError(str(folder / MANIFEST), None, "dataset", f"{name!r} is not in sft_data.datasets {datasets}")
        if name in manifests:
            raise DataError(str(folder / MANIFEST), None, "dataset", f"{name!r} given twice")
        path = folder / RECORDS_FILE
        records = validate_records(read_parquet(path).select(list(RECORD_SCHEMA)), str(path), dataset=name)
        manifests[name], frames[name] = manifest, records.with_columns(pl.lit(name).alias("dataset"))
    missing = [name for name in datasets if name not in frames]
    if missing:
        raise DataError(", ".join(map(str, source_dirs)), None, None, f"no records folder for {missing}")
    return pl.concat([frames[name] for name in datasets]), manifests


def _hash_column(seed: int, keys: list[str], purpose: str) -> pl.Series:
    return pl.Series([hash_order_key(seed, key, purpose) for key in keys], dtype=pl.UInt64)


def select_mixture(records: pl.DataFrame, cfg: SftDataConfig) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(train, val, selection): the training examples in training order (record rows with a `copy` column, a
    record repeated by its weight appearing once per copy), the held-out records (dataset after dataset), and one
    row per dataset saying how many records went where.

    The validation slice is each dataset's `val_records` records of smallest seeded hash; a cap keeps the next ones
    in that order; a weight w repeats every kept record floor(w) times plus once more for a seeded fraction w -
    floor(w) of them."""
    ranked = (
        records.with_row_index("_file_order")
        .with_columns(_hash_column(cfg.seed, records["id"].to_list(), "sft_validation").alias("_rank"))
        .sort("dataset", "_rank", maintain_order=True)
        .with_columns(pl.int_range(pl.len()).over("dataset").alias("_position"))
    )
    available = ranked.group_by("dataset", maintain_order=True).len("available")
    short = available.filter(pl.col("available") <= cfg.val_records)
    if short.height:
        row = short.row(0, named=True)
        raise DataError(
            f"{row['dataset']} records",
            None,
            None,
            f"{row['available']} records, and sft_data.val_records={cfg.val_records} are held out per "
            "dataset: none would be left for training",
        )
    caps = pl.DataFrame(
        {
            "dataset": cfg.datasets,
            "_cap": [cfg.max_records.get(d) for d in cfg.datasets],
            "_weight": [cfg.weight(d) for d in cfg.datasets],
        },
        schema={"dataset": pl.Utf8, "_cap": pl.Int64, "_weight": pl.Float64},
    )
    ranked = ranked.join(caps, on="dataset", how="left", maintain_order="left")
    is_val = pl.col("_position") < cfg.val_records
    kept = pl.col("_cap").is_null() | (pl.col("_position") < cfg.val_records + pl.col("_cap"))
    dataset_order = pl.col("dataset").replace_strict(cfg.datasets, list(range(len(cfg.datasets))))
    val = ranked.filter(is_val).sort(dataset_order, "_file_order")
    train = ranked.filter(~is_val & kept)
    fraction = _hash_column(cfg.seed, train["id"].to_list(), "sft_weight").cast(pl.Float64) / _HASH_SPACE
    copies = pl.col("_weight").floor().cast(pl.Int64) + (
        fraction < (pl.col("_weight") - pl.col("_weight").floor())
    ).cast(pl.Int64)
    train = (
        train.with_columns(copies.alias("_copies"))
        .filter(pl.col("_copies") > 0)
        .with_columns(pl.int_ranges(0, pl.col("_copies")).alias("copy"))
        .explode("copy")
    )
    if cfg.shuffle:
        keys = [f"{identifier}#{copy}" for identifier, copy in zip(train["id"], train["copy"])]
        train = train.with_columns(_hash_column(cfg.seed, keys, "sft_shuffle").alias("_order")).sort("_order")
    else:
        train = train.sort(dataset_order, "_file_order", "copy")
    selection = (
        available.join(ranked.filter(~is_val & ~kept).group_by("dataset").len("capped"), on="dataset", how="left")
        .join(
            train.group_by("dataset").agg(
                pl.col("id").n_unique().alias("train_records"), pl.len().alias("train_examples")
            ),
            on="dataset",
            how="left",
        )
        .join(caps.select("dataset", pl.col("_weight").alias("weight")), on="dataset", how="left")
        .with_columns(pl.lit(cfg.val_records).alias("val_records"))
        .fill_null(0)
        .sort(dataset_order)
        .select("dataset", "available", "val_records", "capped", "train_records", "train_examples", "weight")
    )
    columns = [*RECORD_SCHEMA, "dataset"]
    return train.select(*columns, "copy"), val.select(columns), selection


# ---------------------------------------------------------------- stage sft_data: statistics
def dataset_statistics(record_statistics: pl.DataFrame, examples: pl.DataFrame, datasets: list[str]) -> pl.DataFrame:
    """Per dataset (in `datasets` order): records (distinct), examples (rows), QA pairs, and context / conversation
    tokens of a record: mean, p50, p95, max (nearest-rank quantiles), plus loss tokens and windows."""
    distinct = record_statistics.unique("record_id", keep="first", maintain_order=True)
    aggregations = [pl.len().alias("records"), pl.col("qa_pairs").sum().alias("qa_pairs")]
    for column in ("context_tokens", "conversation_tokens"):
        aggregations += [pl.col(column).mean().round(1).alias(f"{column}_mean")]
        aggregations += [
            pl.col(column).quantile(q, "nearest").cast(pl.Int64).alias(f"{column}_{name}") for name, q in QUANTILES
        ]
        aggregations += [pl.col(column).max().cast(pl.Int64).alias(f"{column}_max")]
    aggregations += [
        pl.col("loss_tokens").sum().alias("loss_tokens"),
        pl.col("windows").mean().round(2).alias("windows_mean"),
        pl.col("windows").max().cast(pl.Int64).alias("windows_max"),
    ]
    table = distinct.group_by("dataset", maintain_order=True).agg(aggregations)
    counts = examples.group_by("dataset", maintain_order=True).agg(pl.len().alias("examples"))
    order = pl.col("dataset").replace_strict(datasets, list(range(len(datasets))))
    return (
        table.join(counts, on="dataset", how="left")
        .sort(order)
        .select("dataset", "records", "examples", *[c for c in table.columns if c not in ("dataset", "records")])
    )


STATISTICS_CONTRACT = pa.DataFrameSchema(
    {
        "dataset": pa.Column(pl.Utf8, unique=True),
        "records": pa.Column(pl.UInt32, checks=pa.Check.ge(1)),
        "examples": pa.Column(pl.UInt32, checks=pa.Check.ge(1)),
        "qa_pairs": pa.Column(pl.Int64, checks=pa.Check.ge(1)),
    },
    name="sft_dataset_statistics",
)
"""The columns of the statistics table a reader relies on (the token columns follow from the aggregation)."""

DROPS_CONTRACT = pa.DataFrameSchema(
    {
        "dataset": pa.Column(pl.Utf8),
        "stage": pa.Column(pl.Utf8, checks=pa.Check.isin(["sft_sources", "sft_data"])),
        "reason": pa.Column(pl.Utf8),
        "count": pa.Column(pl.Int64, checks=pa.Check.ge(1)),
    },
    strict=True,
    name="sft_drops",
)


def drops_table(manifests: dict, tokenization_drops: Counter, datasets: list[str]) -> pl.DataFrame:
    """What each filter dropped, by dataset: the conversion's (sft_sources) and the tokenization's (sft_data)."""
    rows = []
    for name in datasets:
        rows += [
            {"dataset": name, "stage": "sft_sources", "reason": reason, "count": count}
            for reason, count in sorted(manifests[name]["drops"].items())
        ]
        rows += [
            {"dataset": name, "stage": "sft_data", "reason": reason, "count": count}
            for (dataset, reason), count in sorted(tokenization_drops.items())
            if dataset == name
        ]
    frame = pl.DataFrame(rows, schema={"dataset": pl.Utf8, "stage": pl.Utf8, "reason": pl.Utf8, "count": pl.Int64})
    return validate(DROPS_CONTRACT, frame, "sft drops")


def statistics_markdown(manifest: dict) -> str:
    """The per-dataset statistics and drops of a split manifest as Markdown tables."""
    columns = [
        "dataset",
        "records",
        "examples",
        "qa_pairs",
        "context_tokens_mean",
        "context_tokens_p50",
        "context_tokens_p95",
        "context_tokens_max",
        "conversation_tokens_mean",
        "conversation_tokens_p50",
        "conversation_tokens_p95",
        "conversation_tokens_max",
        "loss_tokens",
        "windows_mean",
        "windows_max",
    ]
    lines = [
        f"# Instruction-tuning data: {manifest['split']} split",
        "",
        f"{manifest['examples']} examples of {manifest['records']} records; windows of "
        f"{manifest['layout']['window']} tokens, at most {manifest['layout']['max_windows']} per record.",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for row in manifest["datasets"]:
        lines.append("| " + " | ".join(str(row[c]) for c in columns) + " |")
    lines += ["", "Dropped (stage, reason: count):", ""]
    for row in manifest["drops"]:
        lines.append(f"- {row['dataset']}: {row['stage']}, {row['reason']}: {row['count']}")
    if not manifest["drops"]:
        lines.append("- nothing")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- stage sft_data: writing
class SftSplitWriter:
    """Tokenizes one split batch by batch and writes its shards (holds less than one shard of examples)."""

    def __init__(self, split: str, out_dir: Path, tokenizer, cfg: SftDataConfig):
        self.split, self.out_dir, self.tokenizer, self.cfg = split, out_dir, tokenizer, cfg
        self.pending: list = []
        self.examples = 0
        self.shards: list[dict] = []
        self.record_statistics: list[dict] = []
        self.example_rows: list[dict] = []
        self.drops: Counter = Counter()

    def add(self, records: pl.DataFrame) -> None:
        """Tokenize `records` (rows in output order; repeated rows share their record's tokens)."""
        unique = records.unique("id", keep="first", maintain_order=True)
        tokenized, drops = self.tokenizer.tokenize(unique.select(list(RECORD_SCHEMA)))
        self.drops.update(drops)
        by_id = {record.record_id: record for record in tokenized}
        self.record_statistics += [record.statistics() for record in tokenized]
        for identifier in records["id"].to_list():
            if identifier in by_id:
                self.pending.append(by_id[identifier])
                self.example_rows.append({"dataset": by_id[identifier].dataset})
        while len(self.pending) >= self.cfg.examples_per_shard:
            self._flush(self.cfg.examples_per_shard)

    def _flush(self, count: int) -> None:
        from ga.data.sft.tokenize import examples_frame, validate_examples

        batch, self.pending = self.pending[:count], self.pending[count:]
        name = shard_name(len(self.shards))
        frame = validate_examples(
            examples_frame(batch, self.examples),
            self.tokenizer.layout,
            self.tokenizer.vocab_size,
            f"{self.split}/{name}",
        )
        write_parquet(frame, self.out_dir / name)
        self.shards.append({"file": name, "rows": frame.height, "sha256": sha256_file(self.out_dir / name)})
        self.examples += frame.height

    def finish(self, manifests: dict, params: dict, extra: dict) -> dict:
        if self.pending:
            self._flush(len(self.pending))
        empty_allowed = self.split == "val" and self.cfg.val_records == 0
        if not self.shards and not empty_allowed:
            raise DataError(
                self.split,
                None,
                None,
                f"no instruction-tuning example is left after tokenization (drops: {dict(self.drops)})",
            )
        datasets = self.cfg.datasets
        if self.shards:
            validate(MANIFEST_SHARDS, pl.DataFrame(self.shards), f"{self.split}/{MANIFEST}:shards")
            statistics = dataset_statistics(
                pl.DataFrame(self.record_statistics), pl.DataFrame(self.example_rows), datasets
            )
            statistics = validate(STATISTICS_CONTRACT, statistics, f"{self.split}/{MANIFEST}:datasets")
        else:
            statistics = pl.DataFrame(schema={"dataset": pl.Utf8, "records": pl.UInt32})
        manifest = {
            "kind": "sft_examples",
            "split": self.split,
            "examples": self.examples,
            "records": int(statistics["records"].sum()),
            "layout": self.tokenizer.layout.to_dict(),
            "params": params,
            "tokenizer": self.tokenizer.description,
            "datasets": statistics.to_dicts(),
            "drops": drops_table(manifests, self.drops, datasets).to_dicts(),
            **extra,
            "sources": {
                name: {
                    "records": manifests[name]["records"],
                    "sha256": manifests[name]["sha256"],
                    "licence": manifests[name]["licence"],
                    "provenance": manifests[name]["provenance"],
                }
                for name in datasets
            },
            "shards": self.shards,
            "content_sha256": sha256_json([shard["sha256"] for shard in self.shards]),
        }
        write_json(manifest, self.out_dir / MANIFEST)
        write_text(statistics_markdown(manifest), self.out_dir / STATISTICS_FILE)
        return manifest


def prepare_sft_data(
    cfg: SftDataConfig,
    window: int,
    source_dirs: list[str | os.PathLike],
    tokenizer_dir: str | os.PathLike,
    train_dir: str | os.PathLike,
    val_dir: str | os.PathLike,
) -> dict[str, dict]:
    """The sft_data stage: dataset folders -> train/ and val/ shard folders with manifests."""
    from ga.data.sft.tokenize import SftLayout, SftTokenizer

    records, manifests = read_source_records(source_dirs, cfg.datasets)
    check_no_test_tasks(records, "sft mixture")  # the guard runs on the final mixture, whatever the sources did
    train, val, selection = select_mixture(records, cfg)
    layout = SftLayout.of(window, cfg.max_tokens)
    tokenizer = SftTokenizer.load(tokenizer_dir, layout)
    params = cfg.mixture_depends_on(window)
    with atomic_dir(train_dir) as train_tmp, atomic_dir(val_dir) as val_tmp:
        result = {}
        for split, frame, out in (("train", train, train_tmp), ("val", val, val_tmp)):
            writer = SftSplitWriter(split, out, tokenizer, cfg)
            for start in range(0, frame.height, cfg.tokenize_batch_records):
                writer.add(frame.slice(start, cfg.tokenize_batch_records))
            extra = {"selection": selection.to_dicts()} if split == "train" else {}
            result[split] = writer.finish(manifests, params, extra)
        return result


def build_mixture(
    sources,
    cfg: SftDataConfig,
    window: int,
    tokenizer_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    cache_dir: str | os.PathLike,
) -> dict[str, Path]:
    """Both data stages in one call, as the pipeline runs them (for tests and benchmarks): every dataset of
    `cfg.datasets` converted with its `sources` block into `out_dir/sources/<name>`, then the mixture into
    `out_dir/train` and `out_dir/val`. Returns the two split folders by name."""
    out_dir = Path(out_dir)
    source_dirs = []
    for name in cfg.datasets:
        write_source_records(sources, name, tokenizer_dir, out_dir / "sources" / name, cache_dir)
        source_dirs.append(out_dir / "sources" / name)
    splits = {split: out_dir / split for split in SPLITS}
    prepare_sft_data(cfg, window, source_dirs, tokenizer_dir, splits["train"], splits["val"])
    return splits
