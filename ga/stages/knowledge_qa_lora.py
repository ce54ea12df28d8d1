"""Stage knowledge_qa_lora, one job per benchmark: the QA fine-tuning baseline's PEFT LoRA, trained once on the
benchmark's training questions and answers (no passages) and shared by every length's `qa_finetuning` job."""

from __future__ import annotations

from ga.stages import Stage

STAGE = Stage(
    name="knowledge_qa_lora",
    summary="train the QA fine-tuning baseline's LoRA on one benchmark's training question-answer pairs",
    inputs={"base_model": "base model folder (from fetch_base)"},
    outputs={"qa_lora": "PEFT adapter folder to write"},
    wildcards={"benchmark": "the benchmark (knowledge_eval.benchmarks)"},
)


def depends_on(config, benchmark: str) -> dict:
    from ga.eval.knowledge.sources import qa_pairs_depends_on

    return {
        "seed": config.seed,
        "base_model": config.base_model.depends_on(),
        "benchmark": benchmark,
        "qa_pairs": qa_pairs_depends_on(config, benchmark),
        "qa_finetuning": config.knowledge_eval.qa_finetuning.depends_on(),
    }


def run(config, inputs, outputs, benchmark: str) -> dict:
    from ga.eval.family import open_models
    from ga.eval.knowledge.sources import benchmark_qa_pairs
    from ga.eval.lora import train_qa_lora

    models = open_models(config, inputs.base_model, config.knowledge_eval.resources.qa_finetuning)
    pairs = benchmark_qa_pairs(config, benchmark)
    trained = train_qa_lora(
        models.base_model, models.tokenizer, pairs, config.knowledge_eval.qa_finetuning, config.seed, outputs.qa_lora
    )
    summary = trained.summary()
    return {
        "benchmark": benchmark,
        "qa_pairs": len(pairs),
        "steps": summary["steps"],
        "sequences": summary["sequences"],
        "final_loss": summary["final_loss"],
    }
