"""Evaluation of generative adapters and their baselines (docs/method.md#evaluation).

Knowledge acquisition by context length (the paper's headline experiment):
- `ga.eval.contexts`: `Question`, `Passage`, `Context`; grouping a benchmark's passages into contexts of k tokens;
  the contexts file (Parquet) that the evaluation jobs read.
- `ga.eval.benchmarks`: the benchmark sources (SQuAD v1.1, StreamingQA as CaMeLS prepared it, the embedded twin of
  held-out fictional entities), each yielding passages with their questions in the source's order.
- `ga.eval.metrics`: SQuAD v1.1 F1 / EM (max over references, and the authors' shortest-reference variant),
  ROUGE-L recall.
- `ga.eval.paper`: the paper's published knowledge-QA numbers (resources/paper/knowledge_qa.yaml) as a table.
- `ga.eval.methods`: one interface (`contextualize` a context once, `answer` its questions in one batch) for the
  generative adapter, closed-book, in-context prompting, BM25 retrieval, continual pretraining and QA fine-tuning.
- `ga.eval.generation`: greedy answers in left-padded batches with a KV cache, stopping at a newline.
- `ga.eval.lora`: PEFT LoRAs trained on the frozen base (continual pretraining per context, QA fine-tuning per
  benchmark) and applied without changing it.
- `ga.eval.costs`: contextualization and per-query FLOPs (analytic), wall-clock, peak memory, storage.
- `ga.eval.runner`: a method over a contexts file -> per-question predictions and a summary.

In-context learning (MetaICL and its embedded twin): `ga.eval.icl` (its own package map), on the same methods, runner,
generation, LoRA training and results.

Personalization on multi-session chats (MSC and its embedded twin): `ga.eval.msc` (its own package map).
"""
