"""Stage knowledge_contexts, one job per benchmark and context length k: a benchmark's passages (with the questions
asked about them), concatenated in order into contexts of about k base-model tokens (ga/eval/knowledge/contexts.py), written
as one Parquet file that every method's job for this benchmark and length reads.

Hub downloads (SQuAD) are cached under $GA_CACHE_DIR/eval (default ~/.cache/ga/eval) by dataset and revision, so the
jobs of the other lengths reuse them."""

from __future__ import annotations

from ga.stages import Stage

STAGE = Stage(
    name="knowledge_contexts",
    summary="group one benchmark's passages into contexts of k tokens, with their questions",
    inputs={"base_model": "base model folder (contexts are measured in its tokenizer's tokens)"},
    outputs={"contexts": "contexts Parquet file to write"},
    wildcards={"benchmark": "the benchmark (knowledge_eval.benchmarks)", "length": "k, in base-model tokens"},
)


def depends_on(config, benchmark: str, length: str) -> dict:
    from ga.eval.knowledge.sources import source_depends_on

    return {"benchmark": benchmark, "source": source_depends_on(config, benchmark), "length": int(length)}


def run(config, inputs, outputs, benchmark: str, length: str) -> dict:
    from ga.data.tokenize import DocumentTokenizer
    from ga.eval.knowledge.contexts import group_contexts, over_length, write_contexts
    from ga.eval.knowledge.sources import benchmark_passages, benchmark_provenance

    tokenizer = DocumentTokenizer.load(inputs.base_model)
    passages = benchmark_passages(config, benchmark)
    contexts = group_contexts(passages, int(length), lambda text: tokenizer.count_tokens([text])[0], benchmark)
    write_contexts(contexts, outputs.contexts)
    return {
        "benchmark": benchmark,
        "length": int(length),
        "passages": len(passages),
        "contexts": len(contexts),
        "questions": sum(len(c.questions) for c in contexts),
        "over_length_contexts": over_length(contexts),
        "no_reference_questions": sum(not q.references for c in contexts for q in c.questions),
        "source": benchmark_provenance(config, benchmark),
    }
