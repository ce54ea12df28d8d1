"""Stage msc_conversations, one job per benchmark: every multi-session conversation (MSC-Self-Instruct, downloaded
and cached under $GA_CACHE_DIR/eval, or the synthetic twin's held-out personas) laid out with the instruction-tuning
session layout, counted in base-model tokens, with its questions (ga/eval/msc/jobs.py)."""

from __future__ import annotations

from ga.stages import Stage

STAGE = Stage(
    name="msc_conversations",
    summary="lay out one personalization benchmark's conversations and questions",
    inputs={"base_model": "base model folder (conversations are measured in its tokenizer's tokens)"},
    outputs={"conversations": "conversations Parquet file to write"},
    wildcards={"benchmark": "the benchmark (msc_eval.benchmarks)"},
)


def depends_on(config, benchmark: str) -> dict:
    from ga.eval.msc.jobs import conversations_depends_on

    return conversations_depends_on(config, benchmark)


def run(config, inputs, outputs, benchmark: str) -> dict:
    from ga.base import default_cache_dir
    from ga.eval.msc.jobs import CACHE_SUBDIR, write_benchmark_conversations

    return write_benchmark_conversations(
        config, benchmark, inputs.base_model, outputs.conversations, cache_dir=default_cache_dir() / CACHE_SUBDIR
    )
