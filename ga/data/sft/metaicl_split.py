"""MetaICL's HR->LR task split (MetaICL `config/hr_to_lr.json`; docs/data-sources.md#metaicl) and the guard that
keeps its test tasks out of training.

The 26 test tasks are what the in-context-learning evaluation scores; a model trained on any of them would be
scored on data it has seen. The guard runs at three places: the config (`sft_sources.metaicl.tasks`), the
download and reading of every task file (its task and each row's `task` field), and the final records
(`check_no_test_tasks`, for the mixture stage: MetaICL record ids carry their task).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ga.errors import DataError

if TYPE_CHECKING:
    import polars as pl

HR_TO_LR_TRAIN_TASKS = (
    "piqa",
    "hate_speech_offensive",
    "google_wellformed_query",
    "social_i_qa",
    "circa",
    "quoref",
    "glue-sst2",
    "scitail",
    "emo",
    "cosmos_qa",
    "freebase_qa",
    "ag_news",
    "art",
    "paws",
    "kilt_ay2",
    "glue-qnli",
    "quail",
    "ade_corpus_v2-classification",
    "sciq",
    "hatexplain",
    "emotion",
    "glue-qqp",
    "kilt_fever",
    "kilt_nq",
    "dbpedia_14",
    "kilt_zsre",
    "hellaswag",
    "squad-with_context",
    "hotpot_qa",
    "glue-mnli",
    "ropes",
    "squad-no_context",
    "kilt_hotpotqa",
    "discovery",
    "superglue-record",
    "race-middle",
    "race-high",
    "lama-trex",
    "swag",
    "gigaword",
    "amazon_polarity",
    "biomrc",
    "tab_fact",
    "tweet_eval-emoji",
    "tweet_eval-offensive",
    "tweet_eval-sentiment",
    "tweet_qa",
    "imdb",
    "lama-conceptnet",
    "liar",
    "anli",
    "wiki_qa",
    "kilt_trex",
    "wikisql",
    "wino_grande",
    "wiqa",
    "search_qa",
    "xsum",
    "yahoo_answers_topics",
    "yelp_polarity",
    "yelp_review_full",
)
"""The 61 HR->LR meta-training tasks, in MetaICL's order."""

HR_TO_LR_TEST_CLASSIFICATION_TASKS = (
    "financial_phrasebank",
    "glue-mrpc",
    "sick",
    "medical_questions_pairs",
    "poem_sentiment",
    "glue-wnli",
    "climate_fever",
    "ethos-national_origin",
    "ethos-race",
    "ethos-religion",
    "hate_speech18",
    "glue-rte",
    "superglue-cb",
    "tweet_eval-hate",
    "tweet_eval-stance_atheism",
    "tweet_eval-stance_feminist",
)
HR_TO_LR_TEST_MULTICHOICE_TASKS = (
    "quarel",
    "openbookqa",
    "codah",
    "qasc",
    "dream",
    "commonsense_qa",
    "quartz-with_knowledge",
    "quartz-no_knowledge",
    "ai2_arc",
    "superglue-copa",
)
HR_TO_LR_TEST_TASKS = HR_TO_LR_TEST_CLASSIFICATION_TASKS + HR_TO_LR_TEST_MULTICHOICE_TASKS
"""The 26 HR->LR test tasks (16 classification, 10 multiple choice): never training data."""

METAICL_DATASET = "metaicl"
"""The registry name of the MetaICL source; its record ids are `metaicl.<n>.<task>`."""


def is_test_task(task: str) -> bool:
    return task in HR_TO_LR_TEST_TASKS


def ensure_training_task(task: str, file: str, row: int | None = None, column: str | None = None) -> None:
    """Raise a DataError naming the task and the file when `task` is a MetaICL HR->LR test task."""
    if is_test_task(task):
        raise DataError(
            file,
            row,
            column,
            f"MetaICL task {task!r} is an HR->LR test task: it is evaluated on and must never be used for training",
        )


def check_no_test_tasks(records: pl.DataFrame, file: str) -> None:
    """Fail loudly if any MetaICL record of `records` (the record format) comes from a test task, or if its id
    does not say which task it comes from (then the check could not be made)."""
    ids = records["id"].to_list()
    for row, identifier in enumerate(ids):
        parts = identifier.split(".", 2)  # the dataset, the number, the task (ga/data/sft/records.py's record ids)
        if parts[0] != METAICL_DATASET:
            continue
        if len(parts) != 3:
            raise DataError(
                file,
                row,
                "id",
                f"MetaICL record id {identifier!r} does not name its task "
                "(expected metaicl.<n>.<task>), so test-task leakage cannot be ruled out",
            )
        ensure_training_task(parts[2], file, row, "id")
