"""A run config's view of the knowledge-QA benchmarks: which settings each benchmark's data depends on (the rules'
params), and the benchmark's passages and training QA pairs read with the run's settings (ga/eval/knowledge/benchmarks/).

The embedded twin (`entities`) is the held-out fictional entities of `sft_sources.entity_qa`, so its data depends
on that block (which the run ties to the pretraining corpus's seed and hold-out)."""

from __future__ import annotations

CACHE_SUBDIR = "eval"
"""Hub downloads are cached under $GA_CACHE_DIR/eval (default ~/.cache/ga/eval)."""


def source_depends_on(config, benchmark: str) -> dict:
    """What benchmark `benchmark`'s evaluation passages depend on (a user's CSV is also a rule input)."""
    kqa = config.knowledge_eval
    if benchmark == "squad":
        squad = kqa.squad
        return {
            "hub_id": squad.hub_id,
            "config_name": squad.config_name,
            "revision": squad.revision,
            "split": squad.split,
        }
    if benchmark == "streamingqa":
        return {"test_csv": kqa.streamingqa.test_csv}
    return {"entity_qa": config.sft_sources.entity_qa.depends_on()}


def qa_pairs_depends_on(config, benchmark: str) -> dict:
    """What benchmark `benchmark`'s training QA pairs depend on."""
    kqa = config.knowledge_eval
    if benchmark == "squad":
        squad = kqa.squad
        return {
            "hub_id": squad.hub_id,
            "config_name": squad.config_name,
            "revision": squad.revision,
            "train_split": squad.train_split,
        }
    if benchmark == "streamingqa":
        return {"train_csv": kqa.streamingqa.train_csv}
    return {"entity_qa": config.sft_sources.entity_qa.depends_on()}


def _sources(config):
    from ga.base import default_cache_dir
    from ga.eval.knowledge.benchmarks import BenchmarkSources

    return BenchmarkSources.from_config(
        config.knowledge_eval, config.sft_sources.entity_qa, default_cache_dir() / CACHE_SUBDIR
    )


def benchmark_passages(config, benchmark: str):
    from ga.eval.knowledge.benchmarks import benchmark_passages as passages

    return passages(benchmark, _sources(config))


def benchmark_qa_pairs(config, benchmark: str):
    from ga.eval.knowledge.benchmarks import benchmark_qa_pairs as qa_pairs

    return qa_pairs(benchmark, _sources(config))


def benchmark_provenance(config, benchmark: str) -> dict:
    from ga.eval.knowledge.benchmarks import benchmark_provenance as provenance

    return provenance(benchmark, _sources(config))
