"""Evaluation of generative adapters and their baselines (docs/method.md#evaluation), in three families of the same
shape (docs/evaluation-families.md): each `ga.eval.<family>` holds its config section, sources, methods with ONE
registry table, jobs and results.

- `ga.eval.knowledge`: knowledge acquisition by context length (the paper's headline experiment; SQuAD,
  StreamingQA, the embedded twin of held-out fictional entities).
- `ga.eval.icl`: in-context learning (MetaICL and its embedded twin).
- `ga.eval.msc`: personalization on multi-session chats (MSC and its embedded twin).

What the families share:
- `ga.eval.family`: a method's registry entry (its settings, model-file inputs, resources, builder), the registry,
  the section checks and opening a job's models.
- `ga.eval.config`: the encode strategies and a baseline's LoRA training settings.
- `ga.eval.contexts`: `Question`, `Passage`, `Context` (what every family asks); `ga.eval.questions`: a question's
  Parquet type.
- `ga.eval.methods`: one interface (`contextualize` a context once, `answer` its questions in one batch) and the
  methods every family builds on (closed-book, the generative adapter, in-context prompting).
- `ga.eval.metrics`: SQuAD v1.1 F1 / EM (max over references, and the authors' shortest-reference variant),
  ROUGE-L recall, exact-match accuracy.
- `ga.eval.generation`: greedy answers in left-padded batches with a KV cache, stopping at a newline.
- `ga.eval.lora`: PEFT LoRAs trained on the frozen base (a baseline's own training run) and applied without changing
  it.
- `ga.eval.costs`: contextualization and per-query FLOPs (analytic), wall-clock, peak memory, storage.
- `ga.eval.runner`: a method over contexts -> per-question rows and per-context costs.
- `ga.eval.results`: a job's predictions, costs and summary as every family writes them; the reports' number format.
"""
