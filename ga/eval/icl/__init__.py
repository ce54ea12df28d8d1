"""In-context learning (MetaICL, HR->LR test tasks) and its embedded twin (docs/method.md#in-context-learning).

- `ga.eval.icl.config`: the `icl_eval` section (benchmarks, tasks, ks, seeds, methods, sources, the few-shot
  fine-tuning baseline, resources per method), and what each job depends on.
- `ga.eval.icl.tasks`: the tasks and their per-seed files in MetaICL's layout: downloaded from
  `allenai/metaicl-data` at a pinned revision, or generated for the held-out synthetic ICL tasks.
- `ga.eval.icl.episodes`: a task's examples for one seed as an episodes file; the k-shot draw and the test sample.
- `ga.eval.icl.methods`: generative adapter, zero-shot, few-shot prompting, few-shot fine-tuning behind
  `ga.eval.methods.Method`; the demonstration / query format.
- `ga.eval.icl.jobs`: the grid, and the entry points of its stages (episodes file, one job).
- `ga.eval.icl.results`: every job's accuracy in tables per task and k and by task kind, and a Markdown report.
- `ga.eval.icl.sources`: a run config's view (what each stage depends on, the sources, the format).
"""
