"""Benchmark of the data stages: the pretraining examples stage (tokenize + pack + window + contracts + Parquet
shards) and the instruction-tuning stage sft_data (mixture + context format + chat template + labels + windows +
contracts + Parquet shards).

Prints one JSON object as its last line:
- throughput_ratio_vs_tokenizers: tokens/s of `ga.data.pretrain.prepare_examples` divided by tokens/s of bare
  `tokenizers` `encode_batch` on the same documents (same batch size, texts already in memory), measured side by
  side in this run on a corpus of --ratio-mb MB (best of --repeats runs each; goal >= 0.8). The ratio against
  `encode_batch_fast` (no offsets; what the stage itself calls) is reported too.
- peak_rss_mb: peak resident memory of a separate process running the whole stage over a generated corpus of
  --corpus-gb GB of text (default 2.6 GB: more than a tenth of this machine's 25.3 GB = 23.5 GiB of RAM), with its wall time and throughput.

- sft_throughput_ratio_vs_tokenizers: tokens/s of `ga.data.sft.mixture.prepare_sft_data` divided by tokens/s
  of bare `tokenizers` `encode_batch` on the same texts (every record's context and its conversation as the chat
  template renders it), side by side in this run on --sft-records generated records in the paper's layout
  (windows of 1,024, records of <= 8,192 tokens; best of --repeats runs each; goal >= 0.8).

The corpus is generated on the fly into a temporary folder in the documents stage's format: documents made of
seeded random selections of paragraphs of the standard library's documentation (real English prose). The
instruction-tuning records are made of the same paragraphs: a context of several paragraphs and a session of
questions and answers cut from sentences.
Usage: python benchmarks/data.py [--corpus-gb 2.6] [--ratio-mb 32] [--sft-records 2000] [--tokenizer DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

from ga.data.config import PretrainDataConfig
from ga.data.parquet import shard_name, write_parquet
from ga.io import sha256_file, sha256_json, write_json

DOCS_PER_SHARD = 5_000
PARAGRAPHS_PER_DOC = (2, 12)
STAGE_SETTINGS = {
    "window": 64,
    "completion_windows": 8,
    "reconstruction_windows": 8,
    "val_fraction": 0.01,
    "examples_per_shard": 2048,
    "tokenize_batch_documents": 1024,
}
"""The embedded default's layout (config/config.yaml)."""
SFT_DATASETS = ("coqa", "drop", "quail")
SFT_LAYOUT = {"window": 1024, "max_tokens": 8192}
"""The paper's instruction-tuning layout (config/paper-mistral.yaml)."""
SFT_CONTEXT_PARAGRAPHS = (4, 30)
SFT_QA_PAIRS = (1, 8)
SFT_SETTINGS = {
    "datasets": list(SFT_DATASETS),
    "val_records": 10,
    "max_tokens": SFT_LAYOUT["max_tokens"],
    "examples_per_shard": 1024,
    "tokenize_batch_records": 256,
}


def paragraphs() -> list[str]:
    from ga.data.embedded import python_docs

    pool = [p.strip() for doc in python_docs() for p in doc["text"].split("\n\n") if len(p.strip()) > 40]
    return sorted(set(pool))


def generate_corpus(out: Path, target_bytes: int, seed: int = 0) -> dict:
    """Write documents-stage shards of ~target_bytes of text; returns the documents manifest."""
    pool, rng = paragraphs(), random.Random(seed)
    out.mkdir(parents=True)
    shards, written, doc_index = [], 0, 0
    while written < target_bytes:
        texts = ["\n\n".join(rng.choices(pool, k=rng.randint(*PARAGRAPHS_PER_DOC))) for _ in range(DOCS_PER_SHARD)]
        ids = [f"bench/{doc_index + i:010d}" for i in range(len(texts))]
        doc_index += len(texts)
        frame = pl.DataFrame(
            {"doc_id": ids, "source": ["bench"] * len(texts), "text": texts, "metadata": [None] * len(texts)},
            schema={"doc_id": pl.Utf8, "source": pl.Utf8, "text": pl.Utf8, "metadata": pl.Utf8},
        )
        name = shard_name(len(shards))
        write_parquet(frame, out / name)
        shards.append({"file": name, "rows": frame.height, "sha256": sha256_file(out / name)})
        written += sum(len(t.encode()) for t in texts)
    manifest = {
        "kind": "pretrain_documents",
        "documents": doc_index,
        "text_bytes": written,
        "shards": shards,
        "content_sha256": sha256_json([s["sha256"] for s in shards]),
    }
    write_json(manifest, out / "manifest.json")
    return manifest


def run_stage(documents: Path, tokenizer: Path, out: Path) -> float:
    from ga.data.pretrain import prepare_examples

    settings = PretrainDataConfig.from_dict(STAGE_SETTINGS)
    start = time.perf_counter()
    prepare_examples(settings, documents, tokenizer, out / "train", out / "val")
    return time.perf_counter() - start


def generate_sft_sources(out: Path, records: int, seed: int = 0) -> list[Path]:
    """Record folders (as the sft_sources stage writes them) of SFT_DATASETS, `records` records in all."""
    from ga.data.sft.records import conversation, passage_source, records_frame

    pool, rng = paragraphs(), random.Random(seed)
    sentences = sorted({s.strip() + "." for p in pool for s in p.split(". ") if 20 < len(s.strip()) < 200})
    folders = []
    for index, name in enumerate(SFT_DATASETS):
        rows = []
        for number in range(records // len(SFT_DATASETS) + (index < records % len(SFT_DATASETS))):
            pairs = [
                (rng.choice(sentences).rstrip(".") + "?", rng.choice(sentences))
                for _ in range(rng.randint(*SFT_QA_PAIRS))
            ]
            context = rng.choices(pool, k=rng.randint(*SFT_CONTEXT_PARAGRAPHS))
            rows.append(
                {
                    "id": f"{name}.{number}",
                    "conversations": conversation(pairs),
                    "context": "\n\n".join(context),
                    "context_sources": sorted({passage_source(paragraph) for paragraph in context}),
                }
            )
        folder = out / name
        folder.mkdir(parents=True)
        records_frame(rows).write_parquet(folder / "records.parquet")
        write_json(
            {
                "dataset": name,
                "records": len(rows),
                "drops": {},
                "licence": None,
                "provenance": {},
                "sha256": sha256_file(folder / "records.parquet"),
            },
            folder / "manifest.json",
        )
        folders.append(folder)
    return folders


def run_sft_stage(sources: list[Path], tokenizer: Path, out: Path) -> tuple[float, dict]:
    from ga.data.sft.mixture import prepare_sft_data
    from ga.data.sft.sections import SftDataConfig

    cfg = SftDataConfig.from_dict(SFT_SETTINGS)
    start = time.perf_counter()
    manifests = prepare_sft_data(cfg, SFT_LAYOUT["window"], sources, tokenizer, out / "train", out / "val")
    return time.perf_counter() - start, manifests


def sft_texts(sources: list[Path], tokenizer: Path) -> list[str]:
    """What the stage tokenizes: every record's context and its conversation rendered with the chat template."""
    from ga.format import ChatFormat

    chat = ChatFormat.load(tokenizer)
    frame = pl.concat([pl.read_parquet(folder / "records.parquet") for folder in sources])
    return frame["context"].to_list() + [chat.render(turns).text for turns in frame["conversations"].to_list()]


def sft_throughput(tmp: Path, tokenizer_dir: Path, backend, records: int, repeats: int) -> dict:
    """The sft_data stage against bare encode_batch on the same texts, side by side."""
    sources = generate_sft_sources(tmp / "sft-sources", records, seed=3)
    texts = sft_texts(sources, tokenizer_dir)
    batch = SFT_SETTINGS["tokenize_batch_records"]
    times = {"encode_batch": [], "stage": []}
    tokens = 0
    for repeat in range(repeats):
        start, count = time.perf_counter(), 0
        for i in range(0, len(texts), batch):
            count += sum(len(e.ids) for e in backend.encode_batch(texts[i : i + batch], add_special_tokens=False))
        times["encode_batch"].append(time.perf_counter() - start)
        tokens = count
        seconds, manifests = run_sft_stage(sources, tokenizer_dir, tmp / f"sft-out-{repeat}")
        times["stage"].append(seconds)
    best = {k: min(v) for k, v in times.items()}
    return {
        "sft_throughput_ratio_vs_tokenizers": round(best["encode_batch"] / best["stage"], 3),
        "sft_records": records,
        "sft_examples": manifests["train"]["examples"] + manifests["val"]["examples"],
        "sft_tokens": tokens,
        "sft_tokens_per_s_stage": round(tokens / best["stage"]),
        "sft_tokens_per_s_encode_batch": round(tokens / best["encode_batch"]),
        "sft_seconds_stage": round(best["stage"], 2),
        "sft_seconds_encode_batch": round(best["encode_batch"], 2),
    }


def stage_main(argv: list[str]) -> int:
    """Child process for the peak-memory run: the stage alone, then its own peak RSS as JSON."""
    documents, tokenizer, out = map(Path, argv)
    seconds = run_stage(documents, tokenizer, out)
    manifests = [json.loads((out / s / "manifest.json").read_text()) for s in ("train", "val")]
    print(
        json.dumps(
            {
                "seconds": seconds,
                "tokens": sum(m["tokens"] for m in manifests),
                "examples": sum(m["examples"] for m in manifests),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus-gb", type=float, default=2.6, help="0: only the side-by-side throughput")
    parser.add_argument("--ratio-mb", type=float, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sft-records", type=int, default=2000, help="0: skip the instruction-tuning stage")
    parser.add_argument("--tokenizer", help="model dir with the tokenizer (default: the embedded SmolLM2)")
    parser.add_argument("--workdir", help="where to put the generated corpus (default: a temporary folder)")
    args = parser.parse_args()
    if args.tokenizer:
        tokenizer_dir = Path(args.tokenizer)
    else:
        from ga.smollm2 import embedded_model_dir

        tokenizer_dir = embedded_model_dir()
    from ga.data.tokenize import DocumentTokenizer

    backend = DocumentTokenizer.load(tokenizer_dir).backend
    batch = STAGE_SETTINGS["tokenize_batch_documents"]
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        tmp = Path(tmp)
        # -- side-by-side throughput on the same documents
        generate_corpus(tmp / "small", int(args.ratio_mb * 1e6), seed=1)
        texts = pl.read_parquet(tmp / "small" / "*.parquet")["text"].to_list()
        tokens = 0
        times = {"encode_batch": [], "encode_batch_fast": [], "stage": []}
        for repeat in range(args.repeats):
            for name in ("encode_batch", "encode_batch_fast"):
                encode, start, count = getattr(backend, name), time.perf_counter(), 0
                for i in range(0, len(texts), batch):
                    count += sum(len(e.ids) for e in encode(texts[i : i + batch], add_special_tokens=False))
                times[name].append(time.perf_counter() - start)
                tokens = count
            times["stage"].append(run_stage(tmp / "small", tokenizer_dir, tmp / f"small-out-{repeat}"))
        best = {k: min(v) for k, v in times.items()}
        del texts
        ram_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        result = {
            "throughput_ratio_vs_tokenizers": round(best["encode_batch"] / best["stage"], 3),
            "throughput_ratio_vs_tokenizers_encode_batch_fast": round(best["encode_batch_fast"] / best["stage"], 3),
            "ratio_corpus_mb": round(args.ratio_mb, 1),
            "ratio_tokens": tokens,
            "tokens_per_s_stage": round(tokens / best["stage"]),
            "tokens_per_s_encode_batch": round(tokens / best["encode_batch"]),
            "tokens_per_s_encode_batch_fast": round(tokens / best["encode_batch_fast"]),
            "ram_gib": round(ram_bytes / 2**30, 2),
            "cpu_count": os.cpu_count(),
        }
        if args.sft_records > 0:
            result.update(sft_throughput(tmp, tokenizer_dir, backend, args.sft_records, args.repeats))
        if args.corpus_gb > 0:
            print(json.dumps(result), file=sys.stderr, flush=True)  # early result: the peak run takes long
            # -- peak memory over a corpus larger than a tenth of RAM, in a fresh process
            gen_start = time.perf_counter()
            big = generate_corpus(tmp / "big", int(args.corpus_gb * 1e9), seed=2)
            gen_seconds = time.perf_counter() - gen_start
            child = subprocess.run(
                [sys.executable, __file__, "--stage", str(tmp / "big"), str(tokenizer_dir), str(tmp / "big-out")],
                capture_output=True,
                text=True,
            )
            if child.returncode != 0:
                print(child.stderr[-3000:], file=sys.stderr)
                return child.returncode
            big_run = json.loads(child.stdout.strip().splitlines()[-1])
            result.update(
                {
                    "peak_rss_mb": round(big_run["peak_rss_mb"], 1),
                    "peak_run_corpus_gb": round(big["text_bytes"] / 1e9, 3),
                    "peak_run_corpus_fraction_of_ram": round(big["text_bytes"] / ram_bytes, 4),
                    "peak_run_documents": big["documents"],
                    "peak_run_tokens": big_run["tokens"],
                    "peak_run_examples": big_run["examples"],
                    "peak_run_seconds": round(big_run["seconds"], 1),
                    "peak_run_tokens_per_s": round(big_run["tokens"] / big_run["seconds"]),
                    "corpus_generation_seconds": round(gen_seconds, 1),
                }
            )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--stage":
        raise SystemExit(stage_main(sys.argv[2:]))
    raise SystemExit(main())
