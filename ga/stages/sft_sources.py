"""Stage sft_sources, one job per instruction-tuning dataset: download (or, for the embedded twin, generate) the
dataset, convert it to records, check them against the record contract, and write records.parquet + manifest.json
with the drop counts by reason, provenance and licence (docs/method.md#sft-mixture).

A job depends on its own dataset's settings only, so changing one dataset's filter reruns that dataset's job and
the mixture. Downloads are cached under $GA_CACHE_DIR/sft (default ~/.cache/ga/sft) by dataset and revision."""

from __future__ import annotations

from ga.stages import Stage

STAGE = Stage(
    name="sft_sources",
    summary="download or generate one instruction-tuning dataset and convert it to records",
    inputs={"base_model": "base model folder (token limits are counted with its tokenizer)"},
    outputs={"records": "dataset folder to write (records.parquet + manifest.json)"},
    wildcards={"dataset": "the dataset (a block of sft_sources)"},
)

CACHE_SUBDIR = "sft"


def depends_on(config, dataset: str) -> dict:
    return config.sft_sources.source_depends_on(dataset)


def run(config, inputs, outputs, dataset: str) -> dict:
    from ga.base import default_cache_dir
    from ga.data.sft.mixture import write_source_records

    manifest = write_source_records(
        config.sft_sources, dataset, inputs.base_model, outputs.records, default_cache_dir() / CACHE_SUBDIR
    )
    return {
        "dataset": dataset,
        "records": manifest["records"],
        "qa_pairs": manifest["qa_pairs"],
        "drops": manifest["drops"],
    }
