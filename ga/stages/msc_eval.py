"""Stage msc_eval, one job per benchmark x conversation batch x method: every conversation of the batch becomes an
adapter (generative_adapter, sequential or one session at a time), a prompt (in_context, the whole conversation) or
nothing (closed_book), or is answered with another user's adapter (other_user_adapter, the control); its questions
about the user are answered greedily and scored (token F1, ROUGE-L recall), with the costs of the paper's Table 1
(ga/eval/msc/jobs.py)."""

from __future__ import annotations

from ga.eval.msc.methods import REGISTRY
from ga.stages import Stage

STAGE = Stage(
    name="msc_eval",
    summary="answer one batch of conversations' questions with one method; score and cost it",
    inputs={
        "base_model": "base model folder (from fetch_base)",
        "conversations": "conversations Parquet file (from msc_conversations)",
        "generator": "fine-tuned generator folder (from finetune; generative_adapter and other_user_adapter jobs only)",
    },
    outputs={"results": "results folder to write (predictions.parquet, costs.parquet, summary.json)"},
    optional=REGISTRY.optional_inputs(),
    wildcards={
        "benchmark": "the benchmark (msc_eval.benchmarks)",
        "batch": "the conversation batch",
        "method": "the method (msc_eval.methods)",
    },
)


def depends_on(config, benchmark: str, batch: str, method: str) -> dict:
    from ga.eval.msc.jobs import evaluation_depends_on

    return evaluation_depends_on(config, benchmark, method, batch)


def run(config, inputs, outputs, benchmark: str, batch: str, method: str) -> dict:
    from ga.eval.msc.jobs import evaluate_batch

    return evaluate_batch(
        config,
        benchmark,
        method,
        batch,
        inputs.base_model,
        inputs.conversations,
        outputs.results,
        generator_dir=inputs.generator,
    )
