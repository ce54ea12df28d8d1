"""Stage icl_eval, one job per benchmark x task x k x seed x method: the seed's first k demonstrations become an
adapter (generative_adapter), a prompt (few_shot) or a LoRA (few_shot_finetuning), or nothing (zero_shot, run once
per task at k = 0); every test query "Input: x\\nOutput:" is answered greedily and scored by case-insensitive exact
match. Outputs, in one folder: predictions.parquet, costs.parquet, summary.json (ga/eval/icl/jobs.py)."""
from __future__ import annotations

from ga.stages import Stage

STAGE = Stage(
    name="icl_eval",
    summary="answer one in-context-learning task's test queries with k demonstrations of one seed by one method",
    inputs={"base_model": "base model folder (from fetch_base)",
            "episodes": "the task's episodes file for this seed (from icl_episodes)",
            "generator": "fine-tuned generator folder (from finetune; generative_adapter jobs only)",
            "validation": "the validation seed's episodes file (few_shot_finetuning jobs only: early stopping)"},
    outputs={"results": "results folder to write (predictions.parquet, costs.parquet, summary.json)"},
    optional=("generator", "validation"),
    wildcards={"benchmark": "the benchmark (icl_eval.benchmarks)", "task": "the task", "k": "demonstrations",
               "seed": "the seed of the demonstrations' file", "method": "the method (icl_eval.methods)"},
)

METHOD_INPUTS = {"generative_adapter": "generator", "few_shot_finetuning": "validation"}
"""The optional input each method needs."""


def depends_on(config, benchmark: str, task: str, k: str, seed: str, method: str) -> dict:
    from ga.eval.icl.sources import eval_depends_on

    return eval_depends_on(config, benchmark, task, k, seed, method)


def run(config, inputs, outputs, benchmark: str, task: str, k: str, seed: str, method: str) -> dict:
    from ga.base import load_base
    from ga.eval.device import evaluation_device, limit_threads
    from ga.eval.icl.jobs import evaluate_job
    from ga.eval.icl.methods import build_icl_method
    from ga.eval.icl.sources import icl_format
    from ga.eval.results import say_failures
    from ga.section import ConfigError

    cfg = config.icl_eval
    needed = METHOD_INPUTS.get(method)
    if needed is not None and getattr(inputs, needed) is None:
        raise ConfigError(f"icl_eval: method {method} needs --{needed} (its {needed} input)")
    limit_threads(getattr(cfg.resources, method).threads)
    base = config.base_model
    base_model, tokenizer = load_base(inputs.base_model, dtype=base.dtype,
                                      attn_implementation=base.attn_implementation, device=evaluation_device())
    generator = None
    if method == "generative_adapter":
        import ga

        generator = ga.GenerativeAdapter.from_pretrained(inputs.generator, base_model=base_model)
    fmt = icl_format(config, benchmark)
    evaluated = build_icl_method(method, cfg, base_model, tokenizer, fmt, generator=generator, seed=config.seed)
    summary = evaluate_job(evaluated, inputs.episodes, int(k), fmt, cfg.max_test_examples, outputs.results,
                           validation_path=inputs.validation, progress=True)
    say_failures(summary, f"ga icl_eval: {benchmark}/{task}/{method}/k{k}-s{seed}", outputs.results)
    return summary
