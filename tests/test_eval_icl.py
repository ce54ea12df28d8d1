"""In-context learning (ga.eval.icl): MetaICL files from a fixture in the hub's layout, the embedded twin, episodes
and the k-shot draw, the scorer, the methods on the tiny random Llama, a job end to end, and the summary tables."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import polars as pl
import pytest
import torch
from tiny_models import randomize_generator, tiny_adapter_config

import ga
from ga.base import load_base
from ga.data.contracts import DataError
from ga.data.sft.build import seeded_rng
from ga.data.sft.config import SftSourcesConfig
from ga.data.sft.embedded.config import SyntheticIclConfig
from ga.data.sft.embedded.registry import generate_records
from ga.data.sft.metaicl_split import HR_TO_LR_TEST_TASKS
from ga.data.sft.sources import SFT_SOURCES
from ga.eval.config import LoraTrainingConfig
from ga.eval.icl.config import IclEvalConfig
from ga.eval.icl.episodes import (
    demonstrations,
    episodes_frame,
    read_episodes,
    sample_test,
    validation_examples,
    write_episodes,
)
from ga.eval.icl.jobs import evaluate_job, icl_episode, icl_jobs, write_task_episodes
from ga.eval.icl.methods import IclFormat, build_icl_method, validation_seed
from ga.eval.icl.results import AVERAGES_FILE, JOBS_FILE, MARKDOWN_FILE, TASKS_FILE, write_icl_summary
from ga.eval.icl.tasks import (
    CLASSIFICATION,
    GENERATION,
    MULTICHOICE,
    IclSources,
    TaskFiles,
    benchmark_tasks,
    download_metaicl,
    synthetic_tasks,
    task_files,
    task_kind,
)
from ga.eval.lora import train_lora
from ga.eval.metrics import accuracy_score
from ga.format import ChatFormat
from ga.section import ConfigError

FIXTURE = Path(__file__).parent / "fixtures" / "metaicl"
FORMAT = IclFormat.of(SftSourcesConfig().metaicl)


def hub_file(calls: list):
    """Stands in for huggingface_hub.hf_hub_download: copies the fixture's file."""

    def fetch(hub_id, filename, revision, local_dir):
        calls.append((hub_id, filename, revision))
        target = Path(local_dir) / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(FIXTURE / filename, target)
        return target

    return fetch


def sources(tmp_path, calls=None, **icl) -> IclSources:
    cfg = IclEvalConfig.from_dict({"metaicl": {"tasks": ["glue-rte", "superglue-copa"]}, **icl})
    return IclSources(
        cfg.metaicl,
        cfg.synthetic_icl,
        SyntheticIclConfig(),
        tmp_path / "cache",
        hub_file([] if calls is None else calls),
    )


def fixture_files(task: str, seed: int) -> TaskFiles:
    folder = FIXTURE / "data" / task
    return TaskFiles(task, seed, folder / f"{task}_16_{seed}_train.jsonl", folder / f"{task}_16_{seed}_test.jsonl")


def episodes_file(tmp_path, task="glue-rte", seed=13, kind=CLASSIFICATION):
    return write_episodes(
        episodes_frame("metaicl", kind, fixture_files(task, seed)), tmp_path / f"{task}-{seed}.parquet"
    )


# ---------------------------------------------------------------- config
def test_config_defaults_are_the_paper_grid():
    cfg = IclEvalConfig()
    assert cfg.metaicl.tasks == list(HR_TO_LR_TEST_TASKS) and len(cfg.metaicl.tasks) == 26
    assert (cfg.ks, cfg.seeds, cfg.max_new_tokens, cfg.max_test_examples) == (
        [1, 2, 4, 8, 16],
        [13, 21, 42, 87, 100],
        10,
        None,
    )
    assert cfg.methods == ["generative_adapter", "zero_shot", "few_shot", "few_shot_finetuning"]
    assert len(cfg.metaicl.revision) == 40 and cfg.metaicl.hub_id == "allenai/metaicl-data"


@pytest.mark.parametrize(
    "values, message",
    [
        ({"metaicl": {"tasks": ["glue-sst2"]}}, "not MetaICL HR->LR test tasks"),
        ({"benchmarks": ["metaicl"], "ks": [32]}, "metaicl.train_examples is 16"),
        ({"seeds": [13]}, "needs at least two seeds"),
        ({"methods": ["closed_book"]}, "methods: must be distinct names"),
        ({"ks": [1, 1]}, "ks: must be distinct"),
    ],
)
def test_config_errors(values, message):
    with pytest.raises(ConfigError, match=message):
        IclEvalConfig.from_dict(values)


# ---------------------------------------------------------------- MetaICL: per-file download at the pinned revision
def test_download_fetches_the_pinned_per_seed_files(tmp_path):
    calls = []
    icl = sources(tmp_path, calls)
    files = task_files("metaicl", "glue-rte", 21, icl)
    revision = icl.metaicl.revision
    assert calls == [
        ("allenai/metaicl-data", "data/glue-rte/glue-rte_16_21_train.jsonl", revision),
        ("allenai/metaicl-data", "data/glue-rte/glue-rte_16_21_test.jsonl", revision),
    ]
    assert files.train.read_text() == fixture_files("glue-rte", 21).train.read_text()
    assert download_metaicl(icl.metaicl, "glue-rte", 21, icl.cache_dir, hub_file(calls)) == files
    assert len(calls) == 2  # cached
    assert revision in str(files.train)


def test_tasks_and_kinds(tmp_path):
    icl = sources(tmp_path)
    assert benchmark_tasks("metaicl", icl) == ["glue-rte", "superglue-copa"]
    assert task_kind("metaicl", "glue-rte", icl) == CLASSIFICATION
    assert task_kind("metaicl", "superglue-copa", icl) == MULTICHOICE
    assert sum(task_kind("metaicl", t, icl) == CLASSIFICATION for t in HR_TO_LR_TEST_TASKS) == 16


# ---------------------------------------------------------------- episodes and the k-shot draw
def test_episodes_file_round_trip_and_overlap(tmp_path):
    episodes = read_episodes(episodes_file(tmp_path, seed=21))
    assert (episodes.task, episodes.kind, episodes.seed, episodes.overlapping) == ("glue-rte", CLASSIFICATION, 21, 1)
    assert len(episodes.train) == 15 and len(episodes.test) == 6
    assert 3 not in [example.position for example in episodes.train]  # the test input at position 3 is skipped


def test_k_shot_draw_is_deterministic_nested_and_never_holds_a_query(tmp_path):
    for task, kind in (("glue-rte", CLASSIFICATION), ("superglue-copa", MULTICHOICE)):
        for seed in (13, 21):
            first = read_episodes(episodes_file(tmp_path / "a", task, seed, kind))
            again = read_episodes(episodes_file(tmp_path / "b", task, seed, kind))
            test_inputs = {example.input.strip() for example in first.test}
            for k in (1, 2, 4, 8, 16):
                shown = demonstrations(first, k)
                assert shown == demonstrations(again, k)  # deterministic
                assert shown == demonstrations(first, 16)[:k]  # nested: the first k of the seed's file
                assert not {example.input.strip() for example in shown} & test_inputs
                episode = icl_episode(first, k, FORMAT, None)
                assert all(
                    question.question.removeprefix("Input: ").removesuffix("\nOutput:").strip()
                    not in {source.strip() for source, _ in episode.demonstrations}
                    for question in episode.questions
                )
    # MetaICL's k-shot file is the first k of its 16-shot file: the draw is the file's first k rows
    episodes = read_episodes(episodes_file(tmp_path, "glue-rte", 13))
    rows = fixture_files("glue-rte", 13).train.read_text().splitlines()
    assert [example.position for example in demonstrations(episodes, 4)] == [0, 1, 2, 3] and len(rows) == 16
    # seed 21: position 3 overlaps the test set, so its 4 demonstrations are rows 0, 1, 2, 4
    assert [e.position for e in demonstrations(read_episodes(episodes_file(tmp_path, "glue-rte", 21)), 4)] == [
        0,
        1,
        2,
        4,
    ]


def test_episode_layout_is_metaicl_format(tmp_path):
    episodes = read_episodes(episodes_file(tmp_path))
    episode = icl_episode(episodes, 2, FORMAT, None)
    first, second = episodes.train[:2]
    assert episode.text == (
        f"Input: {first.input}\nOutput: {first.output}\n\nInput: {second.input}\nOutput: {second.output}"
    )
    assert episode.questions[0].question == f"Input: {episodes.test[0].input}\nOutput:"
    assert episode.questions[0].references == (episodes.test[0].output,)
    assert (episode.context_id, episode.length) == ("metaicl-glue-rte-k2-s13", 2)


def test_test_sample_is_seeded_by_task_and_in_file_order(tmp_path):
    episodes = read_episodes(episodes_file(tmp_path))
    assert sample_test(episodes.test, "glue-rte", None) == episodes.test
    sample = sample_test(episodes.test, "glue-rte", 3)
    assert len(sample) == 3 and list(sample) == sorted(sample, key=lambda e: e.position)
    other_seed = read_episodes(episodes_file(tmp_path, seed=21))
    assert sample_test(other_seed.test, "glue-rte", 3) == sample  # the same queries for every seed


def test_validation_examples_come_from_another_seed_without_demonstrations_or_test_inputs(tmp_path):
    own, other = (read_episodes(episodes_file(tmp_path, seed=seed)) for seed in (13, 21))
    held_out = validation_examples(own, other, 4)
    shown = {example.input for example in demonstrations(own, 4)}
    assert held_out and not {example.input for example in held_out} & (shown | {e.input for e in own.test})
    # seed 21's rows 2..15 hold the pool's examples 2..17; 4 demonstrations of seed 13 (examples 0..3) remove 2, 3
    assert len(held_out) == len(other.train) - 2
    with pytest.raises(ValueError, match="another seed"):
        validation_examples(own, own, 4)
    assert [validation_seed([13, 21, 42], seed) for seed in (13, 21, 42)] == [21, 42, 13]


def test_bad_files_name_file_row_and_column(tmp_path):
    bad = tmp_path / "data" / "glue-rte" / "glue-rte_16_13_train.jsonl"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        '{"task": "glue-rte", "input": "x", "output": "y", "options": []}\n'
        '{"task": "sick", "input": "x2", "output": "y", "options": []}\n'
    )
    with pytest.raises(DataError, match="'sick' in the file of task 'glue-rte'") as err:
        episodes_frame("metaicl", CLASSIFICATION, TaskFiles("glue-rte", 13, bad, fixture_files("glue-rte", 13).test))
    assert (err.value.file, err.value.row, err.value.column) == (str(bad), 1, "task")
    frame = episodes_frame("metaicl", CLASSIFICATION, fixture_files("glue-rte", 13))
    with pytest.raises(DataError, match="one_task"):
        write_episodes(
            frame.with_columns(
                pl.when(pl.col("position") == 0).then(pl.lit("sick")).otherwise(pl.col("task")).alias("task")
            ),
            tmp_path / "e.parquet",
        )
    assert not (tmp_path / "e.parquet").exists()


# ---------------------------------------------------------------- no MetaICL test task in the SFT data
def test_no_metaicl_test_task_enters_instruction_tuning(tmp_path):
    assert not set(SftSourcesConfig().metaicl.tasks) & set(IclEvalConfig().metaicl.tasks)
    # the SFT MetaICL converter refuses a test task's file, here the evaluation fixture's own files
    module = SFT_SOURCES["metaicl"]
    for task in ("glue-rte", "superglue-copa"):
        with pytest.raises(DataError, match=f"'{task}' is an HR->LR test task"):
            list(module.read_native([fixture_files(task, 13).train]))
    # and its rows, relabelled into a training task's file, are refused row by row
    rows = fixture_files("glue-rte", 13).train.read_text()
    disguised = tmp_path / "data" / "ag_news" / "ag_news_16384_100_train.jsonl"
    disguised.parent.mkdir(parents=True)
    disguised.write_text(rows)
    with pytest.raises(DataError, match="'glue-rte'") as err:
        module.convert(
            module.read_native([disguised]),
            SftSourcesConfig().source("metaicl"),
            lambda text: len(text.split()),
            seeded_rng(0, "metaicl"),
        )
    assert (err.value.row, err.value.column) == (0, "task")


# ---------------------------------------------------------------- the embedded twin
def test_synthetic_twin_is_the_held_out_tasks_in_metaicl_layout(tmp_path):
    icl = sources(tmp_path, synthetic_icl={"test_examples": 8, "train_pool": 20})
    sft = icl.sft_synthetic_icl
    tasks = benchmark_tasks("synthetic_icl", icl)
    assert tasks == synthetic_tasks(sft) and {t.rsplit("-", 1)[0] for t in tasks} == set(sft.eval_families)
    kinds = {task: task_kind("synthetic_icl", task, icl) for task in tasks}
    assert kinds["keyword_classification-0"] == CLASSIFICATION and kinds["last_letters-0"] == GENERATION
    files = task_files("synthetic_icl", "caesar_shift-1", 42, icl)
    assert files.train.name == "caesar_shift-1_16_42_train.jsonl" and files.train.parent.name == "caesar_shift-1"
    episodes = read_episodes(write_episodes(episodes_frame("synthetic_icl", GENERATION, files), tmp_path / "e.pq"))
    assert len(episodes.train) == 16 and len(episodes.test) == 8 and episodes.overlapping == 0
    again = task_files(
        "synthetic_icl",
        "caesar_shift-1",
        42,
        sources(tmp_path / "other", synthetic_icl={"test_examples": 8, "train_pool": 20}),
    )
    assert again.train.read_text() == files.train.read_text()  # generated from the settings alone
    other_seed = task_files("synthetic_icl", "caesar_shift-1", 13, icl)
    assert other_seed.test.read_text() == files.test.read_text()
    assert other_seed.train.read_text() != files.train.read_text()
    # the held-out tasks never reach an instruction-tuning record
    limited = dataclasses.replace(sft, max_context_tokens=4096, max_conversation_tokens=512)
    records, _ = generate_records("synthetic_icl", limited, lambda text: len(text.split()))
    trained = {identifier.split(".", 2)[2] for identifier in records["id"].to_list()}
    assert trained and not trained & set(tasks)
    with pytest.raises(ConfigError, match="not held-out tasks"):
        benchmark_tasks("synthetic_icl", sources(tmp_path, synthetic_icl={"tasks": ["first_letters-0"]}))


# ---------------------------------------------------------------- grid
def test_grid_runs_zero_shot_once_per_task():
    cfg = IclEvalConfig.from_dict({"ks": [1, 4], "seeds": [13, 21, 42]})
    jobs = icl_jobs(cfg, {"synthetic_icl": ["a-0", "b-0"]})
    zero = [job for job in jobs if job["method"] == "zero_shot"]
    assert zero == [
        {"benchmark": "synthetic_icl", "task": t, "k": 0, "seed": 13, "method": "zero_shot"} for t in ("a-0", "b-0")
    ]
    assert len(jobs) == 2 * (1 + 3 * 2 * 3)
    assert len({tuple(job.values()) for job in jobs}) == len(jobs)


# ---------------------------------------------------------------- scorer
@pytest.mark.parametrize(
    "prediction, references, expected",
    [
        ("entailment", ["entailment"], 1.0),
        ("  Entailment ", ["entailment"], 1.0),
        ("ENTAILMENT", ["Entailment"], 1.0),
        ("not_entailment", ["entailment"], 0.0),
        ("entailment.", ["entailment"], 0.0),  # punctuation counts
        ("The glass broke into 3 pieces.", ["The glass broke into 3 pieces."], 1.0),
        ("the glass broke into 3  pieces.", ["The glass broke into 3 pieces."], 0.0),  # inner spaces count
        ("", ["x"], 0.0),
        ("   ", [" "], 0.0),  # an empty answer is wrong
        ("b", ["a", "B"], 1.0),
        ("Straße", ["STRASSE"], 1.0),  # casefold, not lower
    ],
)
def test_accuracy_cases(prediction, references, expected):
    assert accuracy_score(prediction, references) == {"accuracy": expected}


def test_accuracy_refuses_no_references():
    with pytest.raises(ValueError):
        accuracy_score("a", [])
    with pytest.raises(TypeError):
        accuracy_score("a", "a")


# ---------------------------------------------------------------- methods on the tiny random Llama
@pytest.fixture
def tiny(tiny_model_dir):
    return load_base(tiny_model_dir)


def icl_config(**overrides) -> IclEvalConfig:
    few_shot = {"rank": 4, "alpha": 8, "lr": 1e-2, "epochs": 6, "patience": 1, "batch_size": 4, "max_tokens": 256}
    return IclEvalConfig.from_dict({"max_new_tokens": 4, "batch_size": 4, "few_shot_finetuning": few_shot, **overrides})


def test_few_shot_prompt_is_the_adapter_context_then_the_query(tiny, tmp_path):
    base, tokenizer = tiny
    episode = icl_episode(read_episodes(episodes_file(tmp_path)), 2, FORMAT, None)
    method = build_icl_method("few_shot", icl_config(), base, tokenizer, FORMAT)
    question = episode.questions[0]
    ids, dropped = method.context_prompt(episode.text, question.question)
    chat = ChatFormat(tokenizer)
    assert dropped == 0
    assert ids == chat.prompt_ids([{"role": "user", "content": episode.text + "\n\n" + question.question}])
    zero = build_icl_method("zero_shot", icl_config(), base, tokenizer, FORMAT)
    assert zero.question_prompt(question) == chat.prompt_ids([{"role": "user", "content": question.question}])


def test_early_stopping_keeps_the_best_epoch(tiny):
    base, tokenizer = tiny
    chat = ChatFormat(tokenizer)
    from ga.eval.lora import qa_chats

    ids, labels, _ = qa_chats(chat, [(f"Input: w{i}\nOutput:", f"v{i % 2}") for i in range(6)], 128)
    held_ids, held_labels, _ = qa_chats(chat, [(f"Input: u{i}\nOutput:", f"v{i % 2}") for i in range(4)], 128)
    cfg = LoraTrainingConfig(rank=4, alpha=8, lr=5e-2, epochs=8, batch_size=3)
    trained = train_lora(base, ids, cfg, seed=3, labels=labels, validation=(held_ids, held_labels), patience=2)
    losses = trained.validation_losses
    assert trained.best_epoch == losses.index(min(losses)) + 1
    assert len(losses) == trained.best_epoch + 2 < cfg.epochs  # stopped early, 2 epochs after the best
    # the kept weights are the best epoch's: training that many epochs without validation gives the same weights
    plain = train_lora(
        base, ids, LoraTrainingConfig(**{**cfg.to_dict(), "epochs": trained.best_epoch}), seed=3, labels=labels
    )
    assert all(torch.equal(plain.weights[key], trained.weights[key]) for key in plain.weights)
    assert trained.summary()["best_epoch"] == trained.best_epoch


@pytest.mark.parametrize("method_name", ["zero_shot", "few_shot", "few_shot_finetuning", "generative_adapter"])
def test_job_end_to_end(tiny, tmp_path, method_name):
    base, tokenizer = tiny
    icl = sources(tmp_path, synthetic_icl={"test_examples": 5, "train_pool": 20})
    paths = {seed: tmp_path / f"episodes-{seed}.parquet" for seed in (13, 21)}
    for seed, path in paths.items():
        written = write_task_episodes("synthetic_icl", "keyword_classification-0", seed, icl, path)
        assert written["kind"] == CLASSIFICATION and written["test_examples"] == 5
    cfg = icl_config(max_test_examples=3)
    generator = None
    if method_name == "generative_adapter":
        generator = randomize_generator(ga.GenerativeAdapter(base, tiny_adapter_config(window=16)), std=0.5)
    method = build_icl_method(
        method_name, cfg, base, tokenizer, IclFormat.of(SyntheticIclConfig()), generator=generator, seed=0
    )
    k = 0 if method_name == "zero_shot" else 4
    validation = paths[21] if method_name == "few_shot_finetuning" else None
    summary = evaluate_job(
        method,
        paths[13],
        k,
        IclFormat.of(SyntheticIclConfig()),
        cfg.max_test_examples,
        tmp_path / "out",
        validation_path=validation,
    )
    assert summary["method"] == method_name and summary["k"] == k and summary["k_drawn"] == k
    assert (summary["test_evaluated"], summary["test_available"], summary["max_test_examples"]) == (3, 5, 3)
    assert summary["outcomes"] == {"answered": 3} and 0 <= summary["accuracy"] <= 100
    predictions = pl.read_parquet(tmp_path / "out" / "predictions.parquet")
    assert predictions.height == 3 and "accuracy" in predictions.columns
    expected = (
        100
        * sum(
            accuracy_score(p, r)["accuracy"]
            for p, r in zip(predictions["prediction"].to_list(), predictions["references"].to_list())
        )
        / 3
    )
    assert summary["accuracy"] == pytest.approx(expected)
    costs = pl.read_parquet(tmp_path / "out" / "costs.parquet")
    assert costs.height == 1
    if method_name == "few_shot_finetuning":
        assert summary["validation_seed"] == 21 and summary["validation_examples"] > 0
        notes = costs["notes"][0]
        assert '"best_epoch"' in notes and summary["storage_floats"] > 0
    if method_name in ("few_shot_finetuning", "generative_adapter"):
        assert summary["contextualize_flops"] > 0


def test_job_refuses_a_mismatched_validation_file(tiny, tmp_path):
    base, tokenizer = tiny
    method = build_icl_method("few_shot", icl_config(), base, tokenizer, FORMAT)
    path = episodes_file(tmp_path)
    with pytest.raises(ValueError, match="validation_path is needed by few_shot_finetuning"):
        evaluate_job(method, path, 2, FORMAT, None, tmp_path / "out", validation_path=path)
    zero = build_icl_method("zero_shot", icl_config(), base, tokenizer, FORMAT)
    with pytest.raises(ValueError, match="its k is 0"):
        evaluate_job(zero, path, 2, FORMAT, None, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- summary tables
def test_summary_tables_average_over_seeds_then_tasks(tmp_path):
    def job(task, kind, k, seed, method, accuracy):
        return {
            "benchmark": "metaicl",
            "task": task,
            "kind": kind,
            "k": k,
            "seed": seed,
            "method": method,
            "accuracy": accuracy,
            "questions": 10,
            "scored": 10,
            "max_test_examples": None,
        }

    summaries = [
        job("glue-rte", CLASSIFICATION, 4, 13, "few_shot", 40.0),
        job("glue-rte", CLASSIFICATION, 4, 21, "few_shot", 60.0),
        job("sick", CLASSIFICATION, 4, 13, "few_shot", 20.0),
        job("quarel", MULTICHOICE, 4, 13, "few_shot", 80.0),
        job("glue-rte", CLASSIFICATION, 0, 13, "zero_shot", 10.0),
        job("quarel", MULTICHOICE, 4, 21, "few_shot", None),
    ]  # every query failed: left out
    counts = write_icl_summary(summaries, tmp_path / "icl", "ICL")
    assert counts["jobs"] == 6
    tasks = pl.read_parquet(tmp_path / "icl" / TASKS_FILE)
    rte = tasks.filter((pl.col("task") == "glue-rte") & (pl.col("k") == 4)).row(0, named=True)
    assert (rte["accuracy"], rte["seeds"]) == (50.0, 2)
    averages = {
        (row["method"], row["k"], row["tasks_of"]): (row["accuracy"], row["tasks"])
        for row in pl.read_parquet(tmp_path / "icl" / AVERAGES_FILE).iter_rows(named=True)
    }
    assert averages[("few_shot", 4, "all")] == (pytest.approx((50 + 20 + 80) / 3), 3)
    assert averages[("few_shot", 4, CLASSIFICATION)] == (35.0, 2)
    assert averages[("few_shot", 4, MULTICHOICE)] == (80.0, 1)
    assert averages[("zero_shot", 0, "all")] == (10.0, 1)
    assert pl.read_parquet(tmp_path / "icl" / JOBS_FILE).height == 6
    markdown = (tmp_path / "icl" / MARKDOWN_FILE).read_text()
    assert (
        "| all | few_shot | - | 50.0 |" in markdown
        and "| classification | glue-rte | zero_shot | 10.0 | - |" in markdown
    )
