"""`synthetic_icl`: synthetic in-context-learning tasks in MetaICL's record layout
(docs/method.md#embedded-default; the families are in ga/data/sft/embedded/icl_families.py).

Native row (one per example, MetaICL's fields plus the generator's): `task` (`<family>-<index>`), `family`,
`split`, `params` (the task's drawn parameters), `input`, `output`, `options` (the labels of a classification
task, else empty). Task `<family>-<i>` is generated from (seed, family, i) alone, so adding tasks or families does
not change the others. A task's inputs are distinct.

Split by task family: the `eval_families` are the eval split and never appear in a train record;
`check_no_eval_families` checks final records by their ids, which carry the task (`synthetic_icl.<n>.<family>-<i>`).
The `entity_lookup` family asks only about train entities of the pretraining corpus (the same hold-out as
`entity_qa`), whatever its split; it needs `records_per_task x (max_demonstrations + queries_per_record)` train
entities of a kind for all its records (300 entities give about 80 of each kind; the default has 1,000).

Records, per task: its examples in a random order are consumed record after record (`records_per_task`): a
uniform `min_demonstrations..max_demonstrations` demonstrations "Input: x\\nOutput: y" joined by blank lines, then
`queries_per_record` held-out "Input: x\\nOutput:" -> y; examples left when a task runs out are counted as
`example_leftover`.
Random calls per task: one shuffle of its examples; per record: the number of demonstrations.
A record's context sources are `icl_family:<family>` and `entity:<entity_id>` of every train entity whose name its
demonstrations contain (the `entity_lookup` family), so that the other-context control can tell it from an
`entity_qa` record about the same entity.
"""

from __future__ import annotations

import dataclasses
import random
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path

import polars as pl

from ga.data.contracts import DataError
from ga.data.entities import generate_entities
from ga.data.native import NativeRow, text
from ga.data.sft.build import CountTokens, QAPair, RecordBuilder
from ga.data.sft.embedded import common
from ga.data.sft.embedded.common import EVAL, TRAIN, check_split, generation_rng, split_of
from ga.data.sft.embedded.config import SyntheticIclConfig
from ga.data.sft.embedded.entity_qa import entity_source, eval_entity_ids
from ga.data.sft.embedded.icl_families import Resources, Task, make_task
from ga.data.sft.records import SourceProvenance

NAME = "synthetic_icl"
LICENCE = common.LICENCE
DRAWS_PER_EXAMPLE = 20
"""A task stops drawing after this many draws per example it still needs (small input spaces repeat inputs)."""


def provenance(cfg: SyntheticIclConfig, split: str = TRAIN) -> SourceProvenance:
    return common.provenance(NAME, cfg, split)


def examples_per_task(cfg: SyntheticIclConfig) -> int:
    return cfg.records_per_task * (cfg.max_demonstrations + cfg.queries_per_record)


def task_resources(cfg: SyntheticIclConfig) -> Resources:
    """What the families draw on: the train entities of the pretraining corpus (never its held-out ones)."""
    entities = generate_entities(cfg.entities, cfg.seed)
    held_out = eval_entity_ids(entities, cfg.seed, cfg.val_fraction)
    return Resources([entity for entity in entities if entity.entity_id not in held_out])


def seeded_task(cfg: SyntheticIclConfig, family: str, index: int, resources: Resources) -> tuple[Task, random.Random]:
    """Task `<family>-<index>` and the generator its examples are drawn from (seeded by the run's seed, the family
    and the index alone)."""
    rng = generation_rng(NAME, cfg.seed, family, index)
    return make_task(family, index, rng, resources), rng


def distinct_examples(task: Task, rng: random.Random, wanted: int) -> Iterator[tuple[str, str]]:
    """Up to `wanted` examples of `task` with distinct inputs (fewer when DRAWS_PER_EXAMPLE x wanted draws do not
    find that many)."""
    seen: set[str] = set()
    for _ in range(wanted * DRAWS_PER_EXAMPLE):
        if len(seen) == wanted:
            break
        source, target = task.draw(rng)
        if source in seen:
            continue
        seen.add(source)
        yield source, target


def generate_rows(cfg: SyntheticIclConfig) -> Iterator[dict]:
    resources = task_resources(cfg)
    wanted = examples_per_task(cfg)
    for family in cfg.families:
        split = EVAL if family in cfg.eval_families else TRAIN
        for index in range(cfg.eval_tasks_per_family if split == EVAL else cfg.tasks_per_family):
            task, rng = seeded_task(cfg, family, index, resources)
            for source, target in distinct_examples(task, rng, wanted):
                yield {
                    "task": task.name,
                    "family": family,
                    "split": split,
                    "params": task.params,
                    "input": source,
                    "output": target,
                    "options": list(task.options),
                }


def download(cfg: SyntheticIclConfig, cache_dir: str | Path) -> Path:
    """Generates the native rows (no network) and writes them once under `cache_dir`."""
    return common.write_native(NAME, cfg, cache_dir, lambda: generate_rows(cfg))


def native_rows(cfg: SyntheticIclConfig) -> Iterator[NativeRow]:
    """What `read_native(download(cfg, ...))` yields, without a file."""
    return common.in_memory_rows(NAME, generate_rows(cfg))


read_native = common.read_native


def task_family(task: str) -> str:
    return task.rsplit("-", 1)[0]


def check_no_eval_families(records: pl.DataFrame, eval_families: Iterable[str], file: str) -> None:
    """Fail loudly if a `synthetic_icl` record of `records` comes from a held-out family (or its id does not say
    which task it comes from)."""
    held_out = set(eval_families)
    for row, identifier in enumerate(records["id"].to_list()):
        dataset, _, rest = identifier.partition(".")
        if dataset != NAME:
            continue
        _, _, task = rest.partition(".")
        if not task:
            raise DataError(file, row, "id", f"{identifier!r} does not name its task ({NAME}.<n>.<task>)")
        if task_family(task) in held_out:
            raise DataError(
                file,
                row,
                "id",
                f"{identifier!r} comes from the held-out family "
                f"{task_family(task)!r}: it is evaluated on and must not be trained on",
            )


def named_entities(cfg: SyntheticIclConfig):
    """(pattern of the train entities' names, entity id by name): what a context may name (None: no entity)."""
    entities = generate_entities(cfg.entities, cfg.seed)
    held_out = eval_entity_ids(entities, cfg.seed, cfg.val_fraction)
    ids = {entity.name: entity.entity_id for entity in entities if entity.entity_id not in held_out}
    return common.words_pattern(ids), ids


def convert(
    rows: Iterable[NativeRow],
    cfg: SyntheticIclConfig,
    count_tokens: CountTokens,
    rng: random.Random,
    split: str = TRAIN,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """The records of one split ("train": the training records; "eval": the evaluation records)."""
    check_split(split)
    by_task: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        if split_of(row) != split:
            continue
        task = text(row, "task")
        if (split == TRAIN) == (task_family(task) in cfg.eval_families):
            raise DataError(
                row.file,
                row.row,
                "split",
                f"task {task!r} is in the {split} split, but its family is {'' if split == EVAL else 'not '}held out",
            )
        by_task.setdefault(task, []).append((text(row, "input"), text(row, "output")))
    builder = RecordBuilder(NAME, cfg if split == TRAIN else dataclasses.replace(cfg, max_records=None), count_tokens)
    names, entity_ids = named_entities(cfg)
    for task, examples in by_task.items():
        order = list(range(len(examples)))
        rng.shuffle(order)
        queue = deque(order)
        for _ in range(cfg.records_per_task):
            if builder.full:
                return builder.result()
            wanted = rng.randint(cfg.min_demonstrations, cfg.max_demonstrations)
            if len(queue) < wanted + cfg.queries_per_record:
                builder.drop("example_leftover", len(queue))
                break
            demonstrations = [examples[queue.popleft()] for _ in range(wanted)]
            queries = [examples[queue.popleft()] for _ in range(cfg.queries_per_record)]
            context = cfg.demonstration_separator.join(
                cfg.demonstration_template.format(input=source, output=target) for source, target in demonstrations
            )
            sources = [f"icl_family:{task_family(task)}"]
            if names is not None:
                sources += [entity_source(entity_ids[name]) for name in names.findall(context)]
            builder.add(
                context,
                [QAPair(cfg.question_template.format(input=source), target) for source, target in queries],
                sources,
                tag=task,
            )
    return builder.result()
