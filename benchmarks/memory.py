"""Host memory per training process: the lazy example set (ga.data.examples.open_split) against the eager int64
tensors of load_examples, measured at 1x and 20x examples of the paper's layout and extrapolated to the paper run.

    python benchmarks/memory.py [--examples 100] [--scale 20] [--reads 64] [--batch 1]

Each measurement is a fresh process that opens a split (synthetic token documents written by the pipeline's split
writer; memory depends on shapes, not content), collates --reads random examples in micro-batches of --batch (the
paper: 1 sequence per GPU) and reports its peak resident memory (VmHWM; getrusage's ru_maxrss of a child starts at
its parent's peak). The paper run (docs/method.md#pretraining-data): 8 completion + 8 reconstruction windows of
1,024 tokens, about 1B tokens / 8,192 tokens per sequence = 122,070 training sequences, 8 processes (one per GPU),
each with the whole split open. Per-process peaks are extrapolated linearly in the number of examples from the
two measurements. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ga.data.config import WindowLayout

PAPER_LAYOUT = WindowLayout(window=1024, completion_windows=8, reconstruction_windows=8)
PAPER_TOKENS = 1_000_000_000
PAPER_SEQUENCES = PAPER_TOKENS // PAPER_LAYOUT.seq_len  # 122,070
PAPER_PROCESSES = 8
INT64_BYTES = 8
GB = 1e9
MB = 2**20
DOCUMENT_TOKENS = (200, 4000)
"""Synthetic document lengths (tokens): several documents per 8,192-token sequence, some spanning two."""


def eager_bytes_per_example(layout: WindowLayout) -> int:
    """load_examples' int64 tensors per example: input_ids, attention_mask, labels (S, L), adapter_prefix (S,),
    example_id."""
    return INT64_BYTES * (3 * layout.num_windows * layout.window + layout.num_windows + 1)


def peak_kib() -> int:
    """This process's peak resident memory (VmHWM), KiB."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(status["VmHWM"].split()[0])


def child_main(mode: str, split_dir: str, reads: int, batch: int) -> None:
    """One measurement: open the split the given way, collate random micro-batches, print the peak as JSON."""
    import numpy as np

    from ga.data.examples import load_examples, open_split, read_manifest
    from ga.train.objective import MODEL_INPUT_KEYS, PretrainObjective

    start = time.perf_counter()
    if mode == "lazy":
        examples, manifest = open_split(split_dir)
    else:
        tensors, manifest = load_examples(split_dir), read_manifest(split_dir)
        examples = [{key: tensors[key][i] for key in MODEL_INPUT_KEYS} for i in range(len(tensors["example_id"]))]
    opened = time.perf_counter() - start
    objective = PretrainObjective(manifest["layout"]["completion_windows"])
    start = time.perf_counter()
    for indices in np.random.default_rng(0).integers(0, len(examples), size=(reads // batch, batch)):
        objective.collate([examples[int(i)] for i in indices])
    per_read = (time.perf_counter() - start) / reads
    print(json.dumps({"peak_mb": peak_kib() / 1024, "open_s": opened, "read_ms": 1000 * per_read}))


def measure(mode: str, split_dir: Path, reads: int, batch: int) -> dict:
    run = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(split_dir), str(reads), str(batch)],
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        raise RuntimeError(f"{mode} reader failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def linear_at(sizes: list[int], values: list[float], at: int) -> tuple[float, float]:
    """(value at `at`, slope per example) of the line through two (size, value) points."""
    slope = (values[1] - values[0]) / (sizes[1] - sizes[0])
    return values[0] + slope * (at - sizes[0]), slope


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=100, help="examples of the 1x split (paper layout)")
    parser.add_argument("--scale", type=int, default=20, help="the larger split has this many times more")
    parser.add_argument("--reads", type=int, default=64, help="random examples each process collates")
    parser.add_argument("--batch", type=int, default=1, help="examples per micro-batch")
    parser.add_argument("--workdir", help="where to write the splits (default: a temporary folder)")
    args = parser.parse_args()

    from ga.testing.train_data import write_token_split
    from ga.tiny import tiny_tokenizer_dir

    layout = PAPER_LAYOUT
    result = {
        "layout": {
            "window": layout.window,
            "completion_windows": layout.completion_windows,
            "reconstruction_windows": layout.reconstruction_windows,
        },
        "reads": args.reads,
        "batch": args.batch,
    }
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        tmp = Path(tmp)
        tokenizer = tiny_tokenizer_dir(tmp / "tokenizer")
        sizes, arrow_bytes, peaks = [], [], {"lazy": [], "eager": []}
        timings = {"lazy": [], "eager": []}
        for count in (args.examples, args.scale * args.examples):
            split = tmp / f"split-{count}"
            start = time.perf_counter()
            manifest = write_token_split(split, count, layout, tokenizer, seed=0, document_tokens=DOCUMENT_TOKENS)
            print(f"wrote {manifest['examples']} examples in {time.perf_counter() - start:.1f} s", file=sys.stderr)
            sizes.append(manifest["examples"])
            arrow_bytes.append(sum((split / s["arrow_file"]).stat().st_size for s in manifest["shards"]))
            for mode in ("lazy", "eager"):
                measured = measure(mode, split, args.reads, args.batch)
                peaks[mode].append(measured["peak_mb"])
                timings[mode].append(measured)
                print(f"{mode} {sizes[-1]} examples: {measured}", file=sys.stderr)

    paper = {"sequences": PAPER_SEQUENCES, "processes": PAPER_PROCESSES}
    for mode in ("lazy", "eager"):
        per_process_mb, slope_mb = linear_at(sizes, peaks[mode], PAPER_SEQUENCES)
        paper[f"{mode}_per_process_gb"] = round(per_process_mb * MB / GB, 2)
        paper[f"{mode}_all_processes_gb"] = round(PAPER_PROCESSES * per_process_mb * MB / GB, 1)
        paper[f"{mode}_mb_per_1000_examples"] = round(1000 * slope_mb, 2)
    paper["eager_int64_tensors_at_rest_gb"] = round(PAPER_SEQUENCES * eager_bytes_per_example(layout) / GB, 1)
    arrow_per_example = (arrow_bytes[1] - arrow_bytes[0]) / (sizes[1] - sizes[0])
    paper["arrow_split_on_disk_gb"] = round(PAPER_SEQUENCES * arrow_per_example / GB, 1)
    result.update(
        {
            "examples": sizes,
            "lazy_peak_rss_mb": [round(p, 1) for p in peaks["lazy"]],
            "eager_peak_rss_mb": [round(p, 1) for p in peaks["eager"]],
            "lazy_growth_mb": round(peaks["lazy"][1] - peaks["lazy"][0], 1),
            "eager_growth_mb": round(peaks["eager"][1] - peaks["eager"][0], 1),
            "lazy_read_ms_per_example": round(timings["lazy"][1]["read_ms"], 3),
            "eager_open_s": [round(t["open_s"], 2) for t in timings["eager"]],
            "paper": paper,
        }
    )
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        mode, split_dir, reads, batch = sys.argv[2:6]
        child_main(mode, split_dir, int(reads), int(batch))
    else:
        main()
