"""The in-context-learning tasks and their files, in MetaICL's layout (docs/data-sources.md#metaicl).

Each task has, per seed, a training file of `train_examples` examples and a test file, both
`data/{task}/{task}_{k}_{seed}_{split}.jsonl`, one JSON object per line with `task`, `input`, `output` (for a
multiple-choice task the text of the right option) and `options`:
- `metaicl`: downloaded file by file from `allenai/metaicl-data` at the pinned revision (`ga.data.hub`, cached
  under `cache_dir/metaicl/<revision>/`). MetaICL wrote a seed's training file as the first 16 examples of a
  shuffle of the task's training split with that seed, and its test file as the whole evaluation split (the same
  for every seed).
- `synthetic_icl`: the embedded twin, generated (no network) into the same layout under
  `cache_dir/synthetic_icl_eval/generated-<hash of the settings>/`. Task `<family>-<index>` is the held-out task of
  `sft_sources.synthetic_icl` with the same seeded parameters; its first `test_examples` distinct examples are the
  test set and the next `train_pool` the training pool, whose shuffle with (task, seed) gives the seed's first
  `train_examples` as its training file. Inputs are distinct, so no test input is ever a training input.

Kinds: MetaICL's classification and multiple-choice test tasks; a synthetic task is `classification` when it has
labels (options) and `generation` otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ga.data.hub import FetchFile, download_file, fetch_hub_file
from ga.data.sft.embedded.common import CACHE_KEY_CHARS, generation_rng
from ga.data.sft.embedded.config import SyntheticIclConfig
from ga.data.sft.metaicl_split import HR_TO_LR_TEST_CLASSIFICATION_TASKS, HR_TO_LR_TEST_MULTICHOICE_TASKS
from ga.eval.icl.config import ICL_BENCHMARKS, IclEvalConfig, MetaiclEvalSourceConfig, SyntheticIclEvalConfig
from ga.io import atomic_file, sha256_json
from ga.section import ConfigError

CLASSIFICATION, MULTICHOICE, GENERATION = "classification", "multichoice", "generation"
KINDS = (CLASSIFICATION, MULTICHOICE, GENERATION)
TRAIN, TEST = "train", "test"
METAICL_LICENCE = "CC BY-NC 4.0"
SYNTHETIC_CACHE = "synthetic_icl_eval"


@dataclass(frozen=True)
class TaskFiles:
    """A task's files for one seed."""

    task: str
    seed: int
    train: Path
    test: Path


@dataclass(frozen=True)
class IclSources:
    """What identifies every benchmark's data: the source blocks, the run's synthetic ICL settings (whose held-out
    families are the twin's tasks), and where downloads and generated files are cached."""

    metaicl: MetaiclEvalSourceConfig
    synthetic: SyntheticIclEvalConfig
    sft_synthetic_icl: SyntheticIclConfig
    cache_dir: Path
    fetch_file: FetchFile = fetch_hub_file
    """The hub call of MetaICL's downloads (tests stand in for the hub)."""

    @classmethod
    def from_config(
        cls, icl_eval: IclEvalConfig, sft_synthetic_icl: SyntheticIclConfig, cache_dir: str | Path
    ) -> IclSources:
        return cls(icl_eval.metaicl, icl_eval.synthetic_icl, sft_synthetic_icl, Path(cache_dir))


def _check_benchmark(benchmark: str) -> None:
    if benchmark not in ICL_BENCHMARKS:
        raise ValueError(f"unknown ICL benchmark {benchmark!r}, expected one of {list(ICL_BENCHMARKS)}")


# ---------------------------------------------------------------- tasks and kinds
def synthetic_tasks(sft_cfg: SyntheticIclConfig) -> list[str]:
    """Every held-out task of the synthetic ICL data, `<family>-<index>`, in generation order."""
    return [
        f"{family}-{index}"
        for family in sft_cfg.families
        if family in sft_cfg.eval_families
        for index in range(sft_cfg.eval_tasks_per_family)
    ]


def benchmark_tasks(benchmark: str, sources: IclSources) -> list[str]:
    """The tasks evaluated on `benchmark` (the synthetic ones checked against the held-out families)."""
    _check_benchmark(benchmark)
    if benchmark == "metaicl":
        return list(sources.metaicl.tasks)
    held_out = synthetic_tasks(sources.sft_synthetic_icl)
    if sources.synthetic.tasks is None:
        return held_out
    unknown = [task for task in sources.synthetic.tasks if task not in held_out]
    if unknown:
        raise ConfigError(
            f"icl_eval.synthetic_icl.tasks: {unknown} are not held-out tasks of "
            f"sft_sources.synthetic_icl (those are {held_out})"
        )
    return list(sources.synthetic.tasks)


def task_kind(benchmark: str, task: str, sources: IclSources) -> str:
    _check_benchmark(benchmark)
    if benchmark == "metaicl":
        if task in HR_TO_LR_TEST_CLASSIFICATION_TASKS:
            return CLASSIFICATION
        if task in HR_TO_LR_TEST_MULTICHOICE_TASKS:
            return MULTICHOICE
        raise ValueError(f"{task!r} is not a MetaICL HR->LR test task")
    family, index = _family_index(task)
    return CLASSIFICATION if _synthetic_task(sources.sft_synthetic_icl, family, index)[0].options else GENERATION


# ---------------------------------------------------------------- MetaICL: one download per file
def metaicl_file(cfg: MetaiclEvalSourceConfig, task: str, seed: int, split: str) -> str:
    return cfg.file.format(task=task, k=cfg.train_examples, seed=seed, split=split)


def download_metaicl(
    cfg: MetaiclEvalSourceConfig, task: str, seed: int, cache_dir: str | Path, fetch_file: FetchFile = fetch_hub_file
) -> TaskFiles:
    """The seed's training and test files of `task` at `cfg.revision` (cached; a cached file is reused)."""
    train, test = (
        download_file("metaicl", cfg, metaicl_file(cfg, task, seed, split), cache_dir, fetch_file)
        for split in (TRAIN, TEST)
    )
    return TaskFiles(task, seed, train, test)


# ---------------------------------------------------------------- the synthetic twin: generated files
def _family_index(task: str) -> tuple[str, int]:
    family, _, index = task.rpartition("-")
    if not family or not index.isdigit():
        raise ValueError(f"{task!r} is not a synthetic ICL task name (<family>-<index>)")
    return family, int(index)


def _synthetic_task(sft_cfg: SyntheticIclConfig, family: str, index: int):
    from ga.data.sft.embedded.synthetic_icl import seeded_task, task_resources

    if family not in sft_cfg.eval_families or index >= sft_cfg.eval_tasks_per_family:
        raise ValueError(
            f"{family}-{index} is not a held-out task of sft_sources.synthetic_icl (held-out families "
            f"{sft_cfg.eval_families}, {sft_cfg.eval_tasks_per_family} tasks each)"
        )
    resources = task_resources(sft_cfg) if family == "entity_lookup" else None
    return seeded_task(sft_cfg, family, index, resources)


def synthetic_examples(
    sft_cfg: SyntheticIclConfig, cfg: SyntheticIclEvalConfig, task: str
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], tuple[str, ...]]:
    """(test examples, training pool, options) of a held-out synthetic task; raises ValueError when the task's
    input space is too small for both."""
    family, index = _family_index(task)
    generated, rng = _synthetic_task(sft_cfg, family, index)
    from ga.data.sft.embedded.synthetic_icl import distinct_examples

    wanted = cfg.test_examples + cfg.train_pool
    examples = list(distinct_examples(generated, rng, wanted))
    if len(examples) < wanted:
        raise ValueError(
            f"synthetic ICL task {task!r}: only {len(examples)} distinct examples, {wanted} needed "
            "(lower icl_eval.synthetic_icl.test_examples or train_pool)"
        )
    return examples[: cfg.test_examples], examples[cfg.test_examples :], generated.options


def _write_jsonl(path: Path, task: str, examples: Sequence[tuple[str, str]], options: Sequence[str]) -> None:
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.writelines(
            json.dumps({"task": task, "input": source, "output": target, "options": list(options)}, ensure_ascii=False)
            + "\n"
            for source, target in examples
        )


def generate_synthetic(sources: IclSources, task: str, seed: int) -> TaskFiles:
    """The twin's files of `task` for `seed`, in MetaICL's layout (written once per settings, then reused)."""
    cfg = sources.synthetic
    settings = {"sft_synthetic_icl": sources.sft_synthetic_icl.depends_on(), "synthetic_icl": cfg.depends_on()}
    root = Path(sources.cache_dir) / SYNTHETIC_CACHE / f"generated-{sha256_json(settings)[:CACHE_KEY_CHARS]}"
    layout = MetaiclEvalSourceConfig().file
    paths = {
        split: root / layout.format(task=task, k=cfg.train_examples, seed=seed, split=split) for split in (TRAIN, TEST)
    }
    if not all(path.is_file() for path in paths.values()):
        test, pool, options = synthetic_examples(sources.sft_synthetic_icl, cfg, task)
        order = list(range(len(pool)))
        generation_rng(SYNTHETIC_CACHE, task, seed).shuffle(order)
        _write_jsonl(paths[TEST], task, test, options)
        _write_jsonl(paths[TRAIN], task, [pool[i] for i in order[: cfg.train_examples]], options)
    return TaskFiles(task, seed, paths[TRAIN], paths[TEST])


# ---------------------------------------------------------------- one entry point
def task_files(benchmark: str, task: str, seed: int, sources: IclSources) -> TaskFiles:
    """The seed's training and test files of `task`: downloaded (metaicl) or generated (synthetic_icl)."""
    _check_benchmark(benchmark)
    if benchmark == "metaicl":
        return download_metaicl(sources.metaicl, task, seed, sources.cache_dir, sources.fetch_file)
    return generate_synthetic(sources, task, seed)


def provenance(benchmark: str, task: str, seed: int, sources: IclSources) -> dict:
    """Where a task's files come from (JSON-ready), for the results."""
    _check_benchmark(benchmark)
    if benchmark == "metaicl":
        cfg = sources.metaicl
        return {
            "dataset": "metaicl",
            "hub_id": cfg.hub_id,
            "revision": cfg.revision,
            "licence": METAICL_LICENCE,
            "files": [metaicl_file(cfg, task, seed, split) for split in (TRAIN, TEST)],
        }
    return {
        "dataset": "synthetic_icl",
        "generated_from": "sft_sources.synthetic_icl (held-out families)",
        "settings": {
            "sft_synthetic_icl": sources.sft_synthetic_icl.depends_on(),
            "synthetic_icl": sources.synthetic.depends_on(),
        },
    }
