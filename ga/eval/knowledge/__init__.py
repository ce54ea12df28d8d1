"""Knowledge acquisition by context length (docs/method.md#evaluation): a benchmark's passages grouped into contexts
of k tokens, every question about a context answered by each method.

- `ga.eval.knowledge.config`: the `knowledge_eval` section (`KnowledgeEvalConfig`).
- `ga.eval.knowledge.benchmarks`: the benchmark sources (SQuAD v1.1, StreamingQA as CaMeLS prepared it, the
  embedded twin of held-out fictional entities), each yielding passages with their questions in the source's order.
- `ga.eval.knowledge.sources`: a run config's view of the benchmarks (what their data depends on, read with the
  run's settings).
- `ga.eval.knowledge.contexts`: grouping a benchmark's passages into contexts of k tokens; the contexts file.
- `ga.eval.knowledge.methods`: BM25 retrieval, continual pretraining, QA fine-tuning, and the registry
  `REGISTRY` of every method.
- `ga.eval.knowledge.jobs`: the pipeline's entry points and what each job depends on.
- `ga.eval.knowledge.paper`: the paper's published knowledge-QA numbers (resources/paper/knowledge_qa.yaml).
- `ga.eval.knowledge.results`: the table of every job beside the paper's numbers, and its Markdown report.
"""
