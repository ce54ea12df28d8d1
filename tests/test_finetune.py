"""Instruction tuning on the shared training loop: the SFT objective's batches (loss on assistant tokens only,
padding windows, length grouping), its validation variants, and the finetune stage's step on ZeRO 0 and 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from ga.data.sft.records import RECORD_SCHEMA
from ga.data.sft.tokenize import SftExamples, SftLayout, SftTokenizer, examples_frame
from ga.eval.answer_f1 import first_question
from ga.labels import IGNORE_INDEX
from ga.train.objective import MODEL_INPUT_KEYS, NO_PART
from ga.train.sft_objective import LengthGroupedBatches, SftObjective

WINDOW = 128
MAX_TOKENS = 12 * WINDOW
DATASETS = ("alpha", "beta")


def conversation(pairs):
    messages = []
    for question, answer in pairs:
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return messages


def sft_rows(dataset: str, count: int) -> list[dict]:
    """Records whose contexts vary in length (so in window count) and whose answers are recognisable words."""
    return [
        {
            "id": f"{dataset}.{i}",
            "context": f"Passage {i} of {dataset}: " + "the river runs past the old mill. " * (2 + 6 * (i % 4)),
            "conversations": conversation(
                [(f"What is item {j} of passage {i}?", f"zebra {dataset} {i} {j}") for j in range(1 + i % 2)]
            ),
            "context_sources": [f"passage:{dataset}-{i}"],
        }
        for i in range(count)
    ]


def write_sft_split(
    out_dir: Path, tokenizer_dir: Path, count: int, rows: list[dict] | None = None, interleave_datasets: bool = False
) -> SftExamples:
    """A split folder as sft_data writes it (one shard), tokenized with the given tokenizer: `rows` (records), by
    default `count` records of each of DATASETS."""
    tokenizer = SftTokenizer.load(tokenizer_dir, SftLayout.of(WINDOW, MAX_TOKENS))
    rows = rows if rows is not None else [row for dataset in DATASETS for row in sft_rows(dataset, count)]
    records, drops = tokenizer.tokenize(pl.DataFrame(rows, schema=RECORD_SCHEMA))
    assert not drops and len(records) == len(rows)
    out_dir.mkdir(parents=True)
    examples_frame(records, 0).write_parquet(out_dir / "shard-00000.parquet")
    datasets = list(dict.fromkeys(record.dataset for record in records))
    manifest = {
        "layout": {"window": WINDOW, "max_windows": MAX_TOKENS // WINDOW},
        "shards": [{"file": "shard-00000.parquet", "rows": len(records)}],
        "datasets": [{"dataset": dataset} for dataset in datasets],
        "content_sha256": "test",
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest))
    return SftExamples(out_dir, interleave_datasets=interleave_datasets)


@pytest.fixture(scope="module")
def sft_split(tmp_path_factory, tiny_tokenizer_dir):
    return write_sft_split(tmp_path_factory.mktemp("sft") / "train", tiny_tokenizer_dir, 8)


@pytest.fixture(scope="module")
def tokenizer(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_tokenizer_dir)


def test_loss_only_on_assistant_tokens(sft_split, tokenizer):
    """Every labelled run of a batch decodes to an assistant answer (+ its end-of-turn token), in order; context,
    user, template and padding tokens carry no label."""
    objective = SftObjective(DATASETS)
    grouped = LengthGroupedBatches(sft_split, group_size=3, seed=0)
    answers = {
        row["id"]: [m["content"] for m in row["conversations"] if m["role"] == "assistant"]
        for dataset in DATASETS
        for row in sft_rows(dataset, 8)
    }
    eos = tokenizer.eos_token_id
    for group in range(len(grouped)):
        batch = objective.collate([grouped[group]])
        records = grouped[group]
        for row, record in enumerate(records):
            c, windows = int(batch["context_windows"][row]), int(batch["windows"][row])
            labels, ids = batch["labels"][row], batch["input_ids"][row]
            assert (labels[:c] == IGNORE_INDEX).all(), "a context token is labelled"
            assert (labels[windows:] == IGNORE_INDEX).all() and (batch["attention_mask"][row, windows:] == 0).all()
            assert (batch["adapter_prefix"][row, windows:] == 0).all()
            assert (batch["window_part"][row, :c] == NO_PART).all() and (
                batch["window_part"][row, windows:] == NO_PART
            ).all()
            assert (batch["window_part"][row, c:windows] == DATASETS.index(record["dataset"])).all()
            runs = []
            for w in range(c, windows):
                labelled = (labels[w] != IGNORE_INDEX).tolist()
                start = None
                for position, flag in enumerate(labelled + [False]):
                    if flag and start is None:
                        start = position
                    elif not flag and start is not None:
                        run = ids[w, start:position]
                        assert int(run[-1]) == eos, "a labelled run does not end with the end-of-turn token"
                        assert (labels[w, start:position] == run).all()
                        runs.append(tokenizer.decode(run[:-1]))
                        start = None
            assert runs == answers[record["record_id"]], record["record_id"]


def test_length_grouping_cuts_padding(sft_split):
    grouped = LengthGroupedBatches(sft_split, group_size=4, seed=0)
    assert sorted(i for g in grouped.groups for i in g) == list(range(len(sft_split)))
    assert len(set(sft_split.windows.tolist())) > 1, "the test records should differ in window count"
    assert grouped.padding_share() < grouped.random_padding_share()
    batch = SftObjective(DATASETS).collate([grouped[0]])
    slots = batch["windows"].numel() * batch["input_ids"].shape[1]
    assert 1 - batch["windows"].sum().item() / slots == pytest.approx(grouped._share(grouped.groups[:1]))
    shuffled = LengthGroupedBatches(sft_split, group_size=4, seed=0, by_length=False)
    assert sorted(i for g in shuffled.groups for i in g) == list(range(len(sft_split)))
    assert shuffled.padding_share() == grouped.random_padding_share()
    for groups in (grouped, shuffled):  # token padding share: the collated micro-batches' own count
        batches = [SftObjective(DATASETS).collate([groups[g]]) for g in range(len(groups))]
        positions = sum(b["attention_mask"].numel() for b in batches)
        real = sum(int(b["attention_mask"].sum()) for b in batches)
        assert groups.token_padding_share() == pytest.approx(1 - real / positions)


def test_validation_variants_swap_only_the_context(sft_split):
    objective = SftObjective(DATASETS)
    receivers = [0, 3]
    batch = objective.collate([sft_split[i] for i in receivers])
    donors = [sft_split.donor_for(i) for i in receivers]
    assert all(sft_split.record_ids[d] != sft_split.record_ids[i] for i, d in zip(receivers, donors))
    donor = objective.collate([sft_split[d] for d in donors])
    variants = dict(objective.validation_variants(batch, donor))
    assert set(variants) == {"own", "other", "none"}
    assert (variants["none"]["adapter_prefix"] == 0).all()
    other = variants["other"]
    for row, (i, d) in enumerate(zip(receivers, donors)):
        ours, theirs = sft_split[i], sft_split[d]
        c, dc = int(ours["context_windows"]), int(theirs["context_windows"])
        n = ours["adapter_prefix"].shape[0] - c
        assert torch.equal(other["input_ids"][row, :dc], theirs["input_ids"][:dc])
        assert torch.equal(other["input_ids"][row, dc : dc + n], ours["input_ids"][c:])
        assert torch.equal(other["labels"][row, dc : dc + n], ours["labels"][c:])
        assert (other["labels"][row, :dc] == IGNORE_INDEX).all()
        assert other["adapter_prefix"][row, : dc + n].tolist() == list(range(dc)) + [dc] * n
    # the same answer tokens are scored in every variant
    counts = {name: int((v["labels"] != IGNORE_INDEX).sum()) for name, v in variants.items()}
    assert len(set(counts.values())) == 1, counts


def test_answer_f1_and_first_question(sft_split, tokenizer):
    prompt, answer = first_question(sft_split[0], tokenizer.eos_token_id)
    assert tokenizer.decode(answer) == "zebra alpha 0 0"
    assert "What is item 0 of passage 0?" in tokenizer.decode(prompt)


# --- the other-context control: donors that share no context source ---------------------------------------------
def nearest_other_record(split: SftExamples, index: int) -> int:
    """The donor rule before context sources: the nearest later example of another record of the same dataset."""
    n = len(split)
    return next(
        j
        for j in ((index + step) % n for step in range(1, n))
        if split.record_ids[j] != split.record_ids[index] and split.datasets[j] == split.datasets[index]
    )


@pytest.fixture(scope="module")
def held_out_entity_qa(tmp_path_factory, tiny_tokenizer_dir):
    """The embedded entity_qa eval records (held-out entities; each context holds 0-2 other held-out entities as
    distractors), built and tokenized with the real code; and the config they come from."""
    from ga.data.sft.embedded.common import EVAL
    from ga.data.sft.embedded.config import EntityQaConfig
    from ga.data.sft.embedded.registry import generate_records

    cfg = EntityQaConfig(
        entities=80,
        seed=3,
        val_fraction=0.2,
        passages_per_entity=1,
        max_context_tokens=4096,
        max_conversation_tokens=512,
    )
    records, _ = generate_records("entity_qa", cfg, lambda text: len(text.split()), split=EVAL)
    split = write_sft_split(tmp_path_factory.mktemp("entity_qa") / "val", tiny_tokenizer_dir, 0, records.to_dicts())
    return split, records, cfg


@pytest.fixture(scope="module")
def embedded_mixture_val(tmp_path_factory, tiny_tokenizer_dir):
    """The held-out split of a small embedded mixture (entity_qa, synthetic_icl, synthetic_chat), built by both data
    stages' real code."""
    from ga.data.sft.mixture import build_mixture
    from ga.data.sft.sections import SftDataConfig, SftSourcesSectionConfig

    sources = SftSourcesSectionConfig.from_dict(
        {
            "entity_qa": {"entities": 60, "records_per_entity": 2},
            "synthetic_icl": {
                "entities": 60,
                "tasks_per_family": 1,
                "eval_tasks_per_family": 1,
                "records_per_task": 2,
                "max_demonstrations": 8,
            },
            "synthetic_chat": {"personas": 30, "eval_personas": 5},
        }
    )
    sources.set_run_values(seed=3, pretrain_val_fraction=0.2)
    cfg = SftDataConfig.from_dict({"val_records": 12, "max_tokens": MAX_TOKENS, "seed": 3})
    root = tmp_path_factory.mktemp("embedded-mixture")
    splits = build_mixture(sources, cfg, WINDOW, tiny_tokenizer_dir, root / "out", root / "cache")
    return SftExamples(splits["val"], interleave_datasets=True)


def test_entity_qa_context_sources_name_the_entities_of_the_context(held_out_entity_qa):
    from ga.data.entities import generate_entities

    split, records, cfg = held_out_entity_qa
    names = {f"entity:{entity.entity_id}": entity.name for entity in generate_entities(cfg.entities, cfg.seed)}
    for record in records.iter_rows(named=True):
        passages = record["context"].split(cfg.passage_separator)
        assert len(passages) == cfg.passages_per_entity * len(record["context_sources"]), record["id"]
        for source in record["context_sources"]:
            assert sum(names[source] in passage for passage in passages) >= cfg.passages_per_entity, record["id"]
    # tokenization carries them into the examples, record by record
    by_id = dict(zip(records["id"].to_list(), records["context_sources"].to_list()))
    assert [sorted(split.context_sources[i]) for i in range(len(split))] == [
        by_id[record] for record in split.record_ids
    ]


@pytest.mark.parametrize("split_fixture", ["held_out_entity_qa", "embedded_mixture_val"])
def test_other_context_donor_shares_no_source_with_its_record(split_fixture, request):
    split = request.getfixturevalue(split_fixture)
    split = split[0] if isinstance(split, tuple) else split
    assert len(split) > 10
    for index in range(len(split)):
        donor = split.donor_for(index)
        assert donor is not None and split.datasets[donor] == split.datasets[index], index
        assert split.context_sources[donor].isdisjoint(split.context_sources[index]), (index, donor)
        assert split.donor_for(index) == donor  # deterministic
    if split_fixture == "held_out_entity_qa":
        # the setting exercises the control: the donor rule without sources would hand over a scored entity
        assert any(
            split.context_sources[nearest_other_record(split, i)] & split.context_sources[i] for i in range(len(split))
        )


def sourced_rows(sources_of) -> list[dict]:
    """sft_rows of DATASETS (4 each) whose context sources are `sources_of(dataset, i)`."""
    return [
        dict(row, context_sources=sources_of(dataset, i))
        for dataset in DATASETS
        for i, row in enumerate(sft_rows(dataset, 4))
    ]


@pytest.fixture(scope="module")
def fallback_split(tmp_path_factory, tiny_tokenizer_dir):
    """Every alpha context shares one passage; beta contexts are distinct."""
    rows = sourced_rows(lambda dataset, i: ["passage:alpha-all"] if dataset == "alpha" else [f"passage:beta-{i}"])
    return write_sft_split(tmp_path_factory.mktemp("fallback") / "val", tiny_tokenizer_dir, 0, rows, True)


@pytest.fixture(scope="module")
def no_donor_split(tmp_path_factory, tiny_tokenizer_dir):
    """Every context shares one passage: no example has a donor."""
    rows = sourced_rows(lambda dataset, i: ["passage:shared", f"passage:{dataset}-{i}"])
    return write_sft_split(tmp_path_factory.mktemp("no-donor") / "val", tiny_tokenizer_dir, 0, rows, True)


def test_donor_falls_back_to_another_dataset_then_to_none(fallback_split, no_donor_split):
    for index in range(len(fallback_split)):
        donor = fallback_split.donor_for(index)
        expected = "beta"  # alpha has no disjoint alpha record; beta has disjoint beta records
        assert fallback_split.datasets[donor] == expected, index
        assert fallback_split.context_sources[donor].isdisjoint(fallback_split.context_sources[index])
    assert [no_donor_split.donor_for(i) for i in range(len(no_donor_split))] == [None] * len(no_donor_split)


@pytest.fixture(scope="module")
def tiny_sft_model(tiny_model_dir):
    import ga
    from ga.base import load_base

    base_model, _ = load_base(tiny_model_dir)
    torch.manual_seed(0)
    return ga.GenerativeAdapter(base_model, ga.GenerativeAdapterConfig(inter_size=16, rank=4, alpha=16, window=WINDOW))


def test_validation_counts_examples_without_a_donor_and_scores_the_rest(tiny_sft_model, fallback_split, no_donor_split):
    from ga.train.config import TrainConfig
    from ga.train.distributed import init_distributed
    from ga.train.loop import validate

    dist_info = init_distributed()
    cfg = TrainConfig(val_batch_size=3)
    objective = SftObjective(DATASETS)
    with_fallback = validate(tiny_sft_model, objective, fallback_split, cfg, dist_info)
    assert with_fallback["other_unavailable_examples"] == 0
    assert {f"other_{dataset}_ppl" for dataset in DATASETS} <= set(with_fallback)
    without = validate(tiny_sft_model, objective, no_donor_split, cfg, dist_info)
    assert without["other_unavailable_examples"] == len(no_donor_split)
    assert not [key for key in without if key.startswith("other_") and key.endswith("_ppl")]
    for arm in ("own", "none"):  # the other arms are scored as before
        for dataset in DATASETS:
            assert np.isfinite(without[f"{arm}_{dataset}_ppl"])


def test_paired_own_vs_other_counts_equal_scoring_each_record_alone(tiny_sft_model, fallback_split):
    """validate's per-record comparison (batched, 3 records a batch) == each record scored alone, own vs its donor."""
    from ga.train.config import TrainConfig
    from ga.train.distributed import init_distributed
    from ga.train.loop import validate
    from ga.train.objective import sign_test_p

    objective = SftObjective(DATASETS)
    metrics = validate(tiny_sft_model, objective, fallback_split, TrainConfig(val_batch_size=3), init_distributed())
    expected = {dataset: [0, 0, 0] for dataset in DATASETS}  # examples, own lower, own higher
    with torch.no_grad():
        for i in range(len(fallback_split)):
            record = fallback_split[i]
            batch = objective.collate([record])
            donor = objective.collate([fallback_split[fallback_split.donor_for(i)]])
            nll = {}
            for variant, variant_batch in objective.validation_variants(batch, donor):
                out = tiny_sft_model(**{key: variant_batch[key] for key in MODEL_INPUT_KEYS})
                counts = out.window_token_counts.double()
                nll[variant] = float((out.window_losses.double() * counts).sum() / counts.sum())
            tally = expected[record["dataset"]]
            tally[0] += 1
            tally[1] += nll["own"] < nll["other"]
            tally[2] += nll["own"] > nll["other"]
    for dataset, (examples, lower, higher) in expected.items():
        key = f"own_vs_other_{dataset}"
        assert metrics[f"{key}_examples"] == examples > 0
        assert metrics[f"{key}_lower"] == lower
        assert metrics[f"{key}_sign_p"] == pytest.approx(sign_test_p(lower, higher))


def test_sign_test_p_values():
    from ga.train.objective import sign_test_p

    assert sign_test_p(0, 0) == 1.0 and sign_test_p(8, 8) == 1.0
    assert sign_test_p(5, 0) == sign_test_p(0, 5) == pytest.approx(2 / 32)
    assert sign_test_p(13, 3) == pytest.approx(2 * (560 + 120 + 16 + 1) / 2**16)  # C(16, 13..16)


def test_answer_f1_counts_records_without_a_donor(tiny_sft_model, tokenizer, fallback_split, no_donor_split):
    from ga.eval.answer_f1 import answer_f1

    with_fallback = answer_f1(tiny_sft_model, tokenizer, fallback_split, 2, max_new_tokens=2)["per_dataset"]
    without = answer_f1(tiny_sft_model, tokenizer, no_donor_split, 2, max_new_tokens=2)["per_dataset"]
    for dataset in DATASETS:
        assert with_fallback[dataset]["other_unavailable"] == 0 and "other_f1" in with_fallback[dataset]
        assert without[dataset]["records"] == without[dataset]["other_unavailable"] == 2
        assert "other_f1" not in without[dataset] and {"own_f1", "none_f1"} <= set(without[dataset])


# --- the stage, as a process: one SFT step on ZeRO 0 and 2, kill and resume -----------------------------------

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def stage_inputs(tmp_path_factory, tiny_tokenizer_dir, tiny_model_dir):
    """Inputs of `ga finetune`: the tiny model, a 'pretrained' generator (freshly initialised, seed 0) and SFT
    train/val splits tokenized with the tiny tokenizer."""
    import ga
    from ga.base import load_base

    root = tmp_path_factory.mktemp("finetune-inputs")
    base_model, _ = load_base(tiny_model_dir)
    torch.manual_seed(0)
    model = ga.GenerativeAdapter(base_model, ga.GenerativeAdapterConfig(inter_size=16, rank=4, alpha=16, window=WINDOW))
    model.save_pretrained(root / "pretrained")
    write_sft_split(root / "train", tiny_tokenizer_dir, 8)
    write_sft_split(root / "val", tiny_tokenizer_dir, 2)
    return root, tiny_model_dir


def stage_command(inputs, out: Path, *overrides: str) -> list[str]:
    import sys

    root, model_dir = inputs
    settings = [
        "finetune.steps=4",
        "finetune.micro_batch_size=2",
        "finetune.checkpoint_every=1",
        "finetune.val_examples=2",
        "finetune.generation_records=1",
        "finetune.max_new_tokens=2",
        "finetune.gradient_checkpointing=false",
        *overrides,
    ]
    return [
        sys.executable,
        "-m",
        "ga.cli",
        "finetune",
        "--config",
        str(REPO / "config" / "smoke.yaml"),
        *[arg for s in settings for arg in ("--set", s)],
        "--base-model",
        str(model_dir),
        "--pretrained",
        str(root / "pretrained"),
        "--train",
        str(root / "train"),
        "--val",
        str(root / "val"),
        "--deepspeed-config",
        str(REPO / "resources/deepspeed/zero2.json"),
        "--generator",
        str(out / "generator"),
        "--metrics",
        str(out / "metrics.jsonl"),
        "--validation",
        str(out / "validation.json"),
    ]


def stage_env() -> dict:
    import os

    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return env


def run_stage(inputs, out: Path, *overrides: str) -> dict:
    import subprocess

    result = subprocess.run(
        stage_command(inputs, out, *overrides), env=stage_env(), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / "validation.json").read_text())


def generator_weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "generator.safetensors"))


@pytest.mark.slow
def test_stage_trains_from_the_pretrained_generator(stage_inputs, tmp_path):
    validation = run_stage(stage_inputs, tmp_path / "zero2")
    assert validation["step"] == 4 and validation["skipped_steps"] == 0
    for variant in ("own", "other", "none"):
        for dataset in DATASETS:
            assert np.isfinite(validation[f"{variant}_{dataset}_ppl"])
    assert set(validation["answer_f1"]["per_dataset"]) == set(DATASETS)
    assert 0 <= validation["padding_window_share"] <= validation["padding_window_share_without_grouping"]
    rows = [json.loads(line) for line in (tmp_path / "zero2" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "train"] == [1, 2, 3, 4]
    pretrained = generator_weights(stage_inputs[0] / "pretrained")
    tuned = generator_weights(tmp_path / "zero2" / "generator")
    assert set(tuned) == set(pretrained)
    assert any(not torch.equal(tuned[k], pretrained[k]) for k in tuned), "the generator did not move"


@pytest.mark.slow
def test_one_sft_step_agrees_on_zero_0_and_2(stage_inputs, tmp_path):
    weights = {}
    for stage in (0, 2):
        run_stage(
            stage_inputs,
            tmp_path / f"zero{stage}",
            "finetune.steps=1",
            f"finetune.deepspeed_config={REPO / f'resources/deepspeed/zero{stage}.json'}",
        )
        weights[stage] = generator_weights(tmp_path / f"zero{stage}" / "generator")
    for key in weights[0]:
        torch.testing.assert_close(weights[2][key], weights[0][key], atol=1e-6, rtol=1e-5)


@pytest.mark.slow
def test_killed_stage_resumes_to_the_uninterrupted_result(stage_inputs, tmp_path):
    import signal
    import subprocess
    import time

    settings = ("finetune.steps=8", "finetune.checkpoint_every=2", "finetune.generation_records=0")
    reference = run_stage(stage_inputs, tmp_path / "reference", *settings)

    out = tmp_path / "interrupted"
    out.mkdir()
    with (out / "first.log").open("w") as log:
        proc = subprocess.Popen(
            stage_command(stage_inputs, out, *settings), env=stage_env(), stdout=log, stderr=subprocess.STDOUT
        )
        first_checkpoint = out / "state" / "checkpoints" / f"step-{2:08d}"
        deadline = time.monotonic() + 300
        while not first_checkpoint.is_dir() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)  # like a SLURM job at its time limit
        proc.wait()
    assert first_checkpoint.is_dir(), (out / "first.log").read_text()[-3000:]
    assert not (out / "validation.json").exists(), "the run finished before it could be killed"

    resumed = run_stage(stage_inputs, out, *settings)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "train"][-1] == 8
    expected, found = generator_weights(tmp_path / "reference" / "generator"), generator_weights(out / "generator")
    for key in expected:
        torch.testing.assert_close(found[key], expected[key], atol=1e-6, rtol=1e-5)
    for key, value in reference.items():
        if key.endswith("_ppl"):
            assert resumed[key] == pytest.approx(value, rel=1e-5), key
