"""Stage knowledge_eval, one job per benchmark x method x context length: every context of the length is
contextualized once by the method (an adapter generated from it, a LoRA trained on it, a retrieval index, or the
prompt itself), then all of its questions are answered in batches; the answers are scored (ga/eval/metrics.py) and
the costs measured (ga/eval/costs.py).

Outputs, in one folder: `predictions.parquet` (one row per question: context id, question, references, prediction,
outcome, every metric), `costs.parquet` (one row per context) and `summary.json` (means, counts of every outcome,
the sample, and the cost columns). A job's params are the settings of its own method only, so changing one
baseline's setting reruns only that baseline's jobs."""

from __future__ import annotations

from ga.eval.knowledge.methods import REGISTRY
from ga.stages import Stage

STAGE = Stage(
    name="knowledge_eval",
    summary="answer every question of one benchmark's contexts of one length with one method; score and cost it",
    inputs={
        "base_model": "base model folder (from fetch_base)",
        "contexts": "contexts Parquet file (from knowledge_contexts)",
        "generator": "fine-tuned generator folder (from finetune; generative_adapter jobs only)",
        "qa_lora": "the QA fine-tuning LoRA folder (from knowledge_qa_lora; qa_finetuning jobs only)",
    },
    outputs={"results": "results folder to write (predictions.parquet, costs.parquet, summary.json)"},
    optional=REGISTRY.optional_inputs(),
    wildcards={
        "benchmark": "the benchmark (knowledge_eval.benchmarks)",
        "method": "the method (knowledge_eval.methods)",
        "length": "k, in base-model tokens",
    },
)


def depends_on(config, benchmark: str, method: str, length: str) -> dict:
    """Generation settings plus the method's own settings (its model files are rule inputs)."""
    from ga.eval.knowledge.jobs import evaluation_depends_on

    return evaluation_depends_on(config, benchmark, method, length)


def run(config, inputs, outputs, benchmark: str, method: str, length: str) -> dict:
    from ga.eval.knowledge.jobs import evaluate_job

    summary = evaluate_job(config, benchmark, method, length, inputs, outputs.results)
    return {key: value for key, value in summary.items() if key not in ("sample_contexts",)}
