"""Stage icl_episodes, one job per benchmark x task x seed: the task's training file of that seed (the 16 examples
k-shot demonstrations are drawn from) and its test file, fetched (MetaICL, cached under $GA_CACHE_DIR/eval) or
generated (the synthetic twin), written as one episodes file that every k and method of the task and seed reads."""

from __future__ import annotations

from ga.stages import Stage

STAGE = Stage(
    name="icl_episodes",
    summary="fetch or generate one in-context-learning task's examples for one seed",
    outputs={"episodes": "episodes Parquet file to write"},
    wildcards={"benchmark": "the benchmark (icl_eval.benchmarks)", "task": "the task", "seed": "the seed"},
)


def depends_on(config, benchmark: str, task: str, seed: str) -> dict:
    from ga.eval.icl.sources import episodes_depends_on

    return episodes_depends_on(config, benchmark, task, seed)


def run(config, inputs, outputs, benchmark: str, task: str, seed: str) -> dict:
    from ga.eval.icl.jobs import write_task_episodes
    from ga.eval.icl.sources import icl_sources

    return write_task_episodes(benchmark, task, int(seed), icl_sources(config), outputs.episodes)
