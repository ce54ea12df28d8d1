"""The knowledge-QA evaluation as pipeline jobs: what a stage calls, and what each job depends on.

`config` is the run config: these functions read `config.knowledge_eval` (KnowledgeEvalConfig), `config.base_model`,
`config.seed` and `config.run_name`.

Jobs (one rule each; wildcards in brackets; the contexts and QA-LoRA jobs are `ga/stages/knowledge_contexts.py` and
`knowledge_qa_lora.py`):
  evaluation [benchmark, method, length]   `evaluate_job` -> results folder (predictions.parquet, costs.parquet,
                                           summary.json); params: `evaluation_depends_on`; inputs: the base model
                                           folder, the contexts file, the method's model files (`REGISTRY`)
  summary                                  `collect_results` -> the table of every job as Parquet and Markdown;
                                           params: `summary_depends_on`; inputs: every evaluation folder
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ga.eval.knowledge.methods import REGISTRY

PAPER_MODELS = {
    "mistralai/Mistral-7B-Instruct-v0.2": "Mistral-7B-Instruct",
    "meta-llama/Llama-2-7b-chat-hf": "Llama-2-7B-Chat",
}
"""Base models whose results the paper published (hub id -> the model name in resources/paper/knowledge_qa.yaml)."""


def evaluation_depends_on(config, benchmark: str, method: str, length: str | int) -> dict:
    """Generation settings plus the method's own settings (`REGISTRY`; its model files are rule inputs)."""
    cfg = config.knowledge_eval
    job = {"benchmark": benchmark, "method": method, "length": str(length)}
    return {
        "base_model": config.base_model.depends_on(),
        "benchmark": benchmark,
        "method": method,
        "length": int(length),
        "sample_contexts": cfg.sample_contexts,
        "max_new_tokens": cfg.max_new_tokens,
        "batch_size": cfg.batch_size,
        **REGISTRY[method].settings(config, job),
    }


def summary_depends_on(config) -> dict:
    return {"base_model": config.base_model.id}


def evaluate_job(
    config, benchmark: str, method: str, length: str | int, inputs, output: str | Path, progress: bool = True
) -> dict:
    """The evaluation job: the first `sample_contexts` contexts of the contexts file `inputs.contexts`, each
    contextualized by `method` and its questions answered, scored and costed into the folder `output`; `inputs`:
    the stage's input namespace (base_model, contexts, and the method's model files). Returns the summary."""
    from ga.eval.family import check_method_inputs, open_models
    from ga.eval.knowledge.contexts import read_contexts
    from ga.eval.results import say_failures, write_results
    from ga.eval.runner import run_method

    cfg = config.knowledge_eval
    entry = REGISTRY[method]
    check_method_inputs("knowledge_eval", entry, inputs)
    contexts = read_contexts(inputs.contexts)
    available = len(contexts)
    if cfg.sample_contexts is not None:
        contexts = contexts[: cfg.sample_contexts]
    models = open_models(
        config,
        inputs.base_model,
        getattr(cfg.resources, method),
        generator_dir=inputs.generator if entry.reads_generator else None,
    )
    evaluated = entry.build(cfg, models, qa_lora_dir=inputs.qa_lora, seed=config.seed)
    rows, costs = run_method(evaluated, contexts, progress=progress)
    sample = {
        "contexts_available": available,
        "contexts_evaluated": len(contexts),
        "sample_contexts": cfg.sample_contexts,
    }
    summary = write_results(
        rows, costs, output, {"benchmark": benchmark, "method": method, "length": int(length), **sample}
    )
    say_failures(summary, f"ga knowledge_eval: {benchmark}/{method}/{length}", output)
    return summary


def collect_results(
    config, result_folders: Sequence[str | Path], table_path: str | Path, markdown_path: str | Path
) -> dict:
    """The summary job: every evaluation folder in one table (Parquet and Markdown), beside the paper's F1 when the
    base model is one the paper evaluated."""
    from ga.eval.knowledge.paper import paper_knowledge_qa
    from ga.eval.knowledge.results import markdown_table, summary_table
    from ga.eval.results import read_summaries
    from ga.io import atomic_file, write_text

    table = summary_table(read_summaries(result_folders), paper_knowledge_qa(), PAPER_MODELS.get(config.base_model.id))
    with atomic_file(table_path) as tmp:
        table.write_parquet(tmp)
    write_text(markdown_table(table, f"Knowledge QA by context length: run `{config.run_name}`"), markdown_path)
    return {"jobs": table.height}
