"""Stage knowledge_eval, one job per benchmark x method x context length: every context of the length is
contextualized once by the method (an adapter generated from it, a LoRA trained on it, a retrieval index, or the
prompt itself), then all of its questions are answered in batches; the answers are scored (ga/eval/metrics.py) and
the costs measured (ga/eval/costs.py).

Outputs, in one folder: `predictions.parquet` (one row per question: context id, question, references, prediction,
outcome, every metric), `costs.parquet` (one row per context) and `summary.json` (means, counts of every outcome,
the sample, and the cost columns). A job's params are the settings of its own method only, so changing one
baseline's setting reruns only that baseline's jobs."""
from __future__ import annotations

from ga.stages import Stage

STAGE = Stage(
    name="knowledge_eval",
    summary="answer every question of one benchmark's contexts of one length with one method; score and cost it",
    inputs={"base_model": "base model folder (from fetch_base)",
            "contexts": "contexts Parquet file (from knowledge_contexts)",
            "generator": "fine-tuned generator folder (from finetune; generative_adapter jobs only)",
            "qa_lora": "the QA fine-tuning LoRA folder (from knowledge_qa_lora; qa_finetuning jobs only)"},
    outputs={"results": "results folder to write (predictions.parquet, costs.parquet, summary.json)"},
    optional=("generator", "qa_lora"),
    wildcards={"benchmark": "the benchmark (knowledge_eval.benchmarks)",
               "method": "the method (knowledge_eval.methods)", "length": "k, in base-model tokens"},
)

METHOD_INPUTS = {"generative_adapter": "generator", "qa_finetuning": "qa_lora"}
"""The optional input each method needs."""


def depends_on(config, benchmark: str, method: str, length: str) -> dict:
    """Generation settings plus the method's own settings (its model files are rule inputs)."""
    cfg = config.knowledge_eval
    own = {"generative_adapter": {"encode_strategy": cfg.encode_strategy},
           "in_context": {"max_prompt_tokens": cfg.max_prompt_tokens, "prompt_cache": cfg.prompt_cache},
           "bm25": {"bm25": cfg.bm25.depends_on()},
           "continual_pretraining": {"seed": config.seed,
                                     "continual_pretraining": cfg.continual_pretraining.depends_on()}}.get(method, {})
    return {"base_model": config.base_model.depends_on(), "benchmark": benchmark, "method": method,
            "length": int(length), "sample_contexts": cfg.sample_contexts, "max_new_tokens": cfg.max_new_tokens,
            "batch_size": cfg.batch_size, **own}


def run(config, inputs, outputs, benchmark: str, method: str, length: str) -> dict:
    from ga.base import load_base
    from ga.eval.contexts import read_contexts
    from ga.eval.device import evaluation_device, limit_threads
    from ga.eval.methods import build_method
    from ga.eval.results import say_failures, write_results
    from ga.eval.runner import run_method
    from ga.section import ConfigError

    cfg = config.knowledge_eval
    needed = METHOD_INPUTS.get(method)
    if needed is not None and getattr(inputs, needed) is None:
        raise ConfigError(f"knowledge_eval: method {method} needs --{needed.replace('_', '-')} (its {needed} "
                          "input)")
    contexts = read_contexts(inputs.contexts)
    available = len(contexts)
    if cfg.sample_contexts is not None:
        contexts = contexts[:cfg.sample_contexts]
    limit_threads(getattr(cfg.resources, method).threads)
    base = config.base_model
    base_model, tokenizer = load_base(inputs.base_model, dtype=base.dtype,
                                      attn_implementation=base.attn_implementation, device=evaluation_device())
    generator = None
    if method == "generative_adapter":
        import ga

        generator = ga.GenerativeAdapter.from_pretrained(inputs.generator, base_model=base_model)
    evaluated = build_method(method, cfg, base_model, tokenizer, generator=generator, qa_lora_dir=inputs.qa_lora,
                             seed=config.seed)
    rows, costs = run_method(evaluated, contexts, progress=True)
    sample = {"contexts_available": available, "contexts_evaluated": len(contexts),
              "sample_contexts": cfg.sample_contexts}
    summary = write_results(rows, costs, outputs.results,
                            {"benchmark": benchmark, "method": method, "length": int(length), **sample})
    say_failures(summary, f"ga knowledge_eval: {benchmark}/{method}/{length}", outputs.results)
    return {key: value for key, value in summary.items() if key not in ("sample_contexts",)}
