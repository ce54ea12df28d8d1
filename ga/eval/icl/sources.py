"""A run config's view of the in-context-learning evaluation: what each stage's output depends on (the rules'
params), the sources read with the run's settings, the demonstration format, and the grid of jobs.

Expects the run config to carry the section as `icl_eval` (an `IclEvalConfig`) beside `sft_sources`, `seed` and
`base_model`. The demonstration format is the benchmark's instruction-tuning format (`sft_sources.metaicl` for
MetaICL, `sft_sources.synthetic_icl` for the twin), so that evaluation reads as the ICL records trained on.
"""

from __future__ import annotations

CACHE_SUBDIR = "eval"
"""Downloads and generated files are cached under $GA_CACHE_DIR/eval (default ~/.cache/ga/eval)."""


def source_depends_on(config, benchmark: str) -> dict:
    """What a benchmark's task files depend on."""
    cfg = config.icl_eval
    if benchmark == "metaicl":
        return cfg.metaicl.depends_on()
    return {
        "synthetic_icl": cfg.synthetic_icl.depends_on(),
        "sft_synthetic_icl": config.sft_sources.synthetic_icl.depends_on(),
    }


def format_depends_on(config, benchmark: str) -> dict:
    from ga.eval.icl.methods import icl_format

    fmt = icl_format(config, benchmark)
    return {
        "demonstration_template": fmt.demonstration_template,
        "question_template": fmt.question_template,
        "separator": fmt.separator,
    }


def episodes_depends_on(config, benchmark: str, task: str, seed) -> dict:
    """Stage icl_episodes (benchmark x task x seed)."""
    return {"benchmark": benchmark, "task": task, "seed": int(seed), "source": source_depends_on(config, benchmark)}


def eval_depends_on(config, benchmark: str, task: str, k, seed, method: str) -> dict:
    """Stage icl_eval (benchmark x task x k x seed x method): generation settings, the test cap, the format and the
    method's own settings (`ga.eval.icl.methods.REGISTRY`; its model files and episodes files are rule inputs)."""
    from ga.eval.icl.methods import REGISTRY

    cfg = config.icl_eval
    job = {"benchmark": benchmark, "task": task, "k": str(k), "seed": str(seed), "method": method}
    return {
        "base_model": config.base_model.depends_on(),
        "benchmark": benchmark,
        "task": task,
        "k": int(k),
        "seed": int(seed),
        "method": method,
        "max_test_examples": cfg.max_test_examples,
        "max_new_tokens": cfg.max_new_tokens,
        "batch_size": cfg.batch_size,
        "max_batch_tokens": cfg.max_batch_tokens,
        "format": format_depends_on(config, benchmark),
        **REGISTRY[method].settings(config, job),
    }


def icl_sources(config):
    from ga.base import default_cache_dir
    from ga.eval.icl.tasks import IclSources

    return IclSources.from_config(config.icl_eval, config.sft_sources.synthetic_icl, default_cache_dir() / CACHE_SUBDIR)


def benchmark_tasks(config) -> dict[str, list[str]]:
    """The tasks of every benchmark of the run (no download: names only)."""
    from ga.eval.icl.tasks import benchmark_tasks as tasks

    sources = icl_sources(config)
    return {benchmark: tasks(benchmark, sources) for benchmark in config.icl_eval.benchmarks}


def icl_jobs(config) -> list[dict]:
    """Every job of the run's grid (`ga.eval.icl.jobs.icl_jobs`)."""
    from ga.eval.icl.jobs import icl_jobs as jobs

    return jobs(config.icl_eval, benchmark_tasks(config))
