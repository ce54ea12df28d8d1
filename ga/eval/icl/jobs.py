"""The in-context-learning grid and its jobs: what a stage calls (docs/method.md#in-context-learning).

- `write_task_episodes(benchmark, task, seed, sources, path)`: one task's files for one seed (downloaded or
  generated) as an episodes file (`ga.eval.icl.episodes`), the input of every job of that task and seed.
- `icl_episode(...)`: the k-shot episode of an episodes file as an `IclEpisode` (a `Context`: the demonstrations as
  its text, the test queries as its questions).
- `evaluate_job(method, ...)`: one job, benchmark x task x k x seed x method: the episode contextualized once by the
  method, every query answered, scored by case-insensitive exact match, written like `ga.eval.results.write_results`
  (predictions.parquet, costs.parquet, summary.json).
- `icl_jobs(cfg, tasks)`: every job of the grid (`ga.eval.icl.methods.validation_seed`: whose examples stop
  few-shot fine-tuning early).
- `evaluate_stage_job(config, ...)`: stage icl_eval's job: the models opened, the method built from the registry,
  `evaluate_job`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from ga.eval.contexts import Question
from ga.eval.icl.config import ZERO_SHOT, ZERO_SHOT_K, IclEvalConfig
from ga.eval.icl.episodes import (
    Episodes,
    demonstrations,
    episodes_frame,
    read_episodes,
    sample_test,
    validation_examples,
    write_episodes,
)
from ga.eval.icl.methods import IclEpisode, IclFormat, icl_format
from ga.eval.icl.tasks import IclSources, provenance, task_files, task_kind

FEW_SHOT_FINETUNING = "few_shot_finetuning"


def icl_jobs(cfg: IclEvalConfig, tasks: Mapping[str, Sequence[str]]) -> list[dict]:
    """Every job of the grid: {benchmark, task, k, seed, method} for each benchmark of `cfg` and each of its tasks
    (`tasks[benchmark]`), k of `cfg.ks`, seed of `cfg.seeds`, method of `cfg.methods`; zero_shot, which sees no
    demonstration, once per task at k = 0 and the first seed."""
    jobs = []
    for benchmark in cfg.benchmarks:
        for task in tasks[benchmark]:
            for method in cfg.methods:
                if method == ZERO_SHOT:
                    jobs.append(
                        {"benchmark": benchmark, "task": task, "k": ZERO_SHOT_K, "seed": cfg.seeds[0], "method": method}
                    )
                    continue
                jobs += [
                    {"benchmark": benchmark, "task": task, "k": k, "seed": seed, "method": method}
                    for k in cfg.ks
                    for seed in cfg.seeds
                ]
    return jobs


def write_task_episodes(benchmark: str, task: str, seed: int, sources: IclSources, path: str | Path) -> dict:
    """The episodes file of `task` and `seed` (its files fetched or generated first); returns its counts and
    provenance (JSON-ready)."""
    kind = task_kind(benchmark, task, sources)
    frame = episodes_frame(benchmark, kind, task_files(benchmark, task, seed, sources))
    write_episodes(frame, path)
    train = frame.filter(frame["split"] == "train")
    return {
        "benchmark": benchmark,
        "task": task,
        "kind": kind,
        "seed": seed,
        "train_examples": train.height,
        "train_overlapping_test": int(train["overlaps_test"].sum()),
        "test_examples": frame.height - train.height,
        "source": provenance(benchmark, task, seed, sources),
    }


def icl_episode(
    episodes: Episodes, k: int, icl_format: IclFormat, max_test_examples: int | None, validation: Episodes | None = None
) -> IclEpisode:
    """The k-shot episode of `episodes`: the first k demonstrations (`ga.eval.icl.episodes.demonstrations`), the
    test queries (the task's seeded sample when capped), and, given another seed's episodes, its validation
    examples. `num_tokens` is left 0 (the runner records the tokens each method reads)."""
    shown = demonstrations(episodes, k)
    pairs = tuple((example.input, example.output) for example in shown)
    queries = tuple(
        Question(f"{episodes.task}/test/{example.position}", icl_format.question(example.input), (example.output,))
        for example in sample_test(episodes.test, episodes.task, max_test_examples)
    )
    held_out = (
        ()
        if validation is None
        else tuple((example.input, example.output) for example in validation_examples(episodes, validation, k))
    )
    return IclEpisode(
        context_id=f"{episodes.benchmark}-{episodes.task}-k{k}-s{episodes.seed}",
        benchmark=episodes.benchmark,
        length=k,
        text=icl_format.context(pairs),
        num_tokens=0,
        passage_ids=tuple(f"{episodes.task}/{episodes.seed}/train/{example.position}" for example in shown),
        questions=queries,
        demonstrations=pairs,
        validation=held_out,
    )


def evaluate_job(
    method,
    episodes_path: str | Path,
    k: int,
    icl_format: IclFormat,
    max_test_examples: int | None,
    out_dir: str | Path,
    validation_path: str | Path | None = None,
    progress: bool = False,
) -> dict:
    """One job: the k-shot episode of the episodes file, answered by `method` (built by
    `ga.eval.icl.methods.build_icl_method`), scored (accuracy, percent) and written to `out_dir` (atomically).
    validation_path: another seed's episodes file (few_shot_finetuning only). Returns the job's summary."""
    from ga.eval.metrics import ACCURACY_KEYS, accuracy_score
    from ga.eval.results import write_results
    from ga.eval.runner import run_method

    if (method.name == FEW_SHOT_FINETUNING) != (validation_path is not None):
        raise ValueError(
            f"evaluate_job: validation_path is needed by {FEW_SHOT_FINETUNING} and by no other "
            f"method (method {method.name}, validation_path {validation_path})"
        )
    if method.name == ZERO_SHOT and k != ZERO_SHOT_K:
        raise ValueError(f"evaluate_job: {ZERO_SHOT} sees no demonstrations: its k is {ZERO_SHOT_K}, got {k}")
    episodes = read_episodes(episodes_path)
    validation = None if validation_path is None else read_episodes(validation_path)
    episode = icl_episode(episodes, k, icl_format, max_test_examples, validation)
    rows, costs = run_method(method, [episode], progress=progress)
    job = {
        "benchmark": episodes.benchmark,
        "task": episodes.task,
        "kind": episodes.kind,
        "k": k,
        "seed": episodes.seed,
        "method": method.name,
        "k_drawn": len(episode.demonstrations),
        "train_overlapping_test": episodes.overlapping,
        "test_available": len(episodes.test),
        "test_evaluated": len(episode.questions),
        "max_test_examples": max_test_examples,
        "validation_seed": None if validation is None else validation.seed,
        "validation_examples": len(episode.validation) if validation is not None else None,
    }
    return write_results(rows, costs, out_dir, job, scorer=accuracy_score, metrics=ACCURACY_KEYS)


def evaluate_stage_job(
    config, benchmark: str, task: str, k: str | int, seed: str | int, method: str, inputs, output: str | Path
) -> dict:
    """Stage icl_eval's job: open the models the method reads, build it (`ga.eval.icl.methods.REGISTRY`), and
    `evaluate_job` the episodes file `inputs.episodes` into the folder `output`; `inputs`: the stage's input
    namespace (base_model, episodes, and the method's own inputs). Returns the job's summary."""
    from ga.eval.family import check_method_inputs, open_models
    from ga.eval.icl.methods import REGISTRY
    from ga.eval.results import say_failures

    cfg = config.icl_eval
    entry = REGISTRY[method]
    check_method_inputs("icl_eval", entry, inputs)
    models = open_models(
        config,
        inputs.base_model,
        getattr(cfg.resources, method),
        generator_dir=inputs.generator if entry.reads_generator else None,
    )
    fmt = icl_format(config, benchmark)
    evaluated = entry.build(cfg, models, icl_format=fmt, seed=config.seed)
    summary = evaluate_job(
        evaluated,
        inputs.episodes,
        int(k),
        fmt,
        cfg.max_test_examples,
        output,
        validation_path=inputs.validation,
        progress=True,
    )
    say_failures(summary, f"ga icl_eval: {benchmark}/{task}/{method}/k{k}-s{seed}", output)
    return summary
