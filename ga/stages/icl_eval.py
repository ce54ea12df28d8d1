"""Stage icl_eval, one job per benchmark x task x k x seed x method: the seed's first k demonstrations become an
adapter (generative_adapter), a prompt (few_shot) or a LoRA (few_shot_finetuning), or nothing (zero_shot, run once
per task at k = 0); every test query "Input: x\\nOutput:" is answered greedily and scored by case-insensitive exact
match. Outputs, in one folder: predictions.parquet, costs.parquet, summary.json (ga/eval/icl/jobs.py)."""

from __future__ import annotations

from ga.eval.icl.methods import REGISTRY
from ga.stages import Stage

STAGE = Stage(
    name="icl_eval",
    summary="answer one in-context-learning task's test queries with k demonstrations of one seed by one method",
    inputs={
        "base_model": "base model folder (from fetch_base)",
        "episodes": "the task's episodes file for this seed (from icl_episodes)",
        "generator": "fine-tuned generator folder (from finetune; generative_adapter jobs only)",
        "validation": "the validation seed's episodes file (few_shot_finetuning jobs only: early stopping)",
    },
    outputs={"results": "results folder to write (predictions.parquet, costs.parquet, summary.json)"},
    optional=REGISTRY.optional_inputs(),
    wildcards={
        "benchmark": "the benchmark (icl_eval.benchmarks)",
        "task": "the task",
        "k": "demonstrations",
        "seed": "the seed of the demonstrations' file",
        "method": "the method (icl_eval.methods)",
    },
)


def depends_on(config, benchmark: str, task: str, k: str, seed: str, method: str) -> dict:
    from ga.eval.icl.sources import eval_depends_on

    return eval_depends_on(config, benchmark, task, k, seed, method)


def run(config, inputs, outputs, benchmark: str, task: str, k: str, seed: str, method: str) -> dict:
    from ga.eval.icl.jobs import evaluate_stage_job

    return evaluate_stage_job(config, benchmark, task, k, seed, method, inputs, outputs.results)
