"""Personalization on multi-session chats (docs/method.md#personalization): MemGPT's
`MSC-Self-Instruct` and its embedded twin, the held-out personas of `synthetic_chat`.

A conversation (earlier sessions plus the current one) is laid out as context text by the shared
`ga.format.SessionLayout`, the layout instruction tuning gave `synthetic_chat`'s contexts; it is a
`ga.eval.contexts.Context`, so the knowledge-QA methods, runner, costs and scoring serve it unchanged.

- `ga.eval.msc.config`: the `msc_eval` section (`MscEvalConfig`).
- `ga.eval.msc.sources`: the MSC file (hub download, native JSONL) and the twin's personas, as `Chat`s.
- `ga.eval.msc.conversations`: `Chat` -> `Conversation`; the conversations file; job batches.
- `ga.eval.msc.encoding`: reading a conversation one session at a time (`GenerativeAdapter.update`) and what it
  equals.
- `ga.eval.msc.methods`: generative adapter (sequential, streaming, session streaming), closed-book, full-conversation
  prompting.
- `ga.eval.msc.results`: one job's results; the paper's Table 1 (F1, TFLOPs per query, storage per user).
- `ga.eval.msc.jobs`: the pipeline's entry points and what each job depends on.
"""
