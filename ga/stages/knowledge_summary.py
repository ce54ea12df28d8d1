"""Stage knowledge_summary: every knowledge_eval job of the run in one table (benchmark x method x length: scores,
counts, costs), beside the paper's published F1 where the run's base model is one the paper evaluated."""
from __future__ import annotations

from ga.stages import Stage

STAGE = Stage(
    name="knowledge_summary",
    summary="collect every knowledge-QA job into one table beside the paper's numbers",
    inputs={"results": "knowledge_eval result folders"},
    outputs={"table": "summary Parquet file to write", "markdown": "summary Markdown file to write"},
    many=("results",),
)

PAPER_MODELS = {"mistralai/Mistral-7B-Instruct-v0.2": "Mistral-7B-Instruct", "meta-llama/Llama-2-7b-chat-hf":
                "Llama-2-7B-Chat"}
"""Base models whose results the paper published (hub id -> the model name in resources/paper/knowledge_qa.yaml)."""


def depends_on(config) -> dict:
    return {"base_model": config.base_model.id}


def run(config, inputs, outputs) -> dict:
    from ga.eval.paper import paper_knowledge_qa
    from ga.eval.results import markdown_table, read_summaries, summary_table
    from ga.io import atomic_file, write_text

    table = summary_table(read_summaries(inputs.results), paper_knowledge_qa(), PAPER_MODELS.get(config.base_model.id))
    with atomic_file(outputs.table) as tmp:
        table.write_parquet(tmp)
    write_text(markdown_table(table, f"Knowledge QA by context length: run `{config.run_name}`"), outputs.markdown)
    return {"jobs": table.height}
