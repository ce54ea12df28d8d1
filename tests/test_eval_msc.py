"""Personalization on multi-session chats (ga/eval/msc/): the MSC source from a fixture in its native layout (the hub
call stood in for), the embedded twin, the shared conversation layout, session streaming against sequential
encoding, costs against FlopCounterMode, the scorer, and the jobs end to end on the tiny random model."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest
import torch
from tiny_models import randomize_generator, tiny_adapter_config, tiny_base
from torch.utils.flop_counter import FlopCounterMode

import ga
from ga.base import BaseModelConfig, load_base
from ga.data.contracts import DataError
from ga.data.native import NativeRow
from ga.data.sft.embedded.common import EVAL
from ga.data.sft.embedded.config import SyntheticChatConfig
from ga.data.sft.embedded.registry import generate_records
from ga.data.sft.embedded.synthetic_chat import session_layout
from ga.data.sft.records import ASSISTANT, USER
from ga.eval import costs
from ga.eval.msc import jobs, sources
from ga.eval.msc.config import MscEvalConfig, MscSourceConfig
from ga.eval.msc.conversations import (
    Chat,
    Conversation,
    batch_conversations,
    batch_count,
    conversations,
    read_conversations,
    write_conversations,
)
from ga.eval.msc.encoding import encode_sessions, session_segments, session_windows, window_aligned
from ga.eval.msc.methods import SessionStreamingAdapter, build_msc_method
from ga.eval.msc.results import evaluate_conversations, paper_msc, pooled_summaries, summary_table
from ga.eval.results import score_rows
from ga.format import ContextFormat, SessionLayout
from ga.section import ConfigError

FIXTURE = Path(__file__).parent / "fixtures" / "msc" / "msc_self_instruct.jsonl"
LAYOUT = SessionLayout("Session {number}:", "User", "Assistant", "\n\n")
LIMITS = {"max_context_tokens": 4096, "max_conversation_tokens": 512}
WINDOW = 16


def count_words(text: str) -> int:
    return len(text.split())


def chat_config(**overrides) -> SyntheticChatConfig:
    return SyntheticChatConfig(**{"personas": 4, "eval_personas": 3, "seed": 3, **LIMITS, **overrides})


def fake_fetch(calls: list):
    """Stands in for `huggingface_hub.hf_hub_download`: copies the fixture where the hub call would save it."""

    def fetch(hub_id, filename, revision, local_dir):
        calls.append((hub_id, filename, revision))
        Path(local_dir).mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy(FIXTURE, Path(local_dir) / filename))

    return fetch


def rows_of(data: list[dict], file: str = "msc.jsonl"):
    return [NativeRow(file, index, item) for index, item in enumerate(data)]


def fixture_rows() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text().splitlines()]


# ---------------------------------------------------------------- config
def test_config_defaults_and_errors():
    cfg = MscEvalConfig()
    assert cfg.benchmarks == ["synthetic_chat"]
    assert cfg.methods == ["generative_adapter", "closed_book", "in_context", "other_user_adapter"]
    for bad in ({"benchmarks": ["squad"]}, {"methods": ["closed_book", "closed_book"]}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            MscEvalConfig(**bad)
    with pytest.raises(ConfigError, match="user_speaker"):
        MscSourceConfig(user_speaker="Speaker 1")
    with pytest.raises(ConfigError, match="encode_strategy"):
        MscEvalConfig(encode_strategy="parallel")


# ---------------------------------------------------------------- the shared layout
def test_session_layout_by_hand():
    sessions = [[(USER, "Hi, I keep bees."), (ASSISTANT, "Lovely!")], [(USER, "Twelve jars this year.")]]
    assert LAYOUT.text(sessions) == (
        "Session 1:\nUser: Hi, I keep bees.\nAssistant: Lovely!\n\nSession 2:\nUser: Twelve jars this year."
    )
    with pytest.raises(ValueError, match="session 1, turn 0: role 'system'"):
        LAYOUT.text([[("system", "x")]])


def test_twin_conversations_are_the_sft_eval_contexts():
    """Training and evaluation see a conversation alike: the twin's conversation text is, persona by persona, the
    context of synthetic_chat's instruction-tuning record for that persona."""
    cfg = chat_config()
    chats = sources.twin_chats(cfg)
    items = conversations(chats, "synthetic_chat", session_layout(cfg), count_words)
    records = generate_records("synthetic_chat", cfg, count_words, EVAL)[0]
    assert [c.text for c in items] == records["context"].to_list()
    assert [c.passage_ids for c in items] == [(f"persona:eval-{i}",) for i in range(cfg.eval_personas)]
    first = items[0]
    assert len(first.sessions) == cfg.sessions and len(first.questions) == cfg.facts_per_persona + 1
    assert first.questions[0].question == "What is my name?"
    assert first.questions[0].question_id == "synthetic_chat-00000-name"
    name = first.questions[0].references[0].removeprefix("Your name is ").removesuffix(".")
    assert name in first.text


# ---------------------------------------------------------------- MSC: the native layout
def test_msc_download_and_chats(tmp_path):
    calls = []
    cfg = MscSourceConfig()
    path = sources.download(cfg, tmp_path, fake_fetch(calls))
    assert sources.download(cfg, tmp_path, fake_fetch(calls)) == path and len(calls) == 1  # cached
    assert calls == [("MemGPT/MSC-Self-Instruct", "msc_self_instruct.jsonl", None)]
    assert path == tmp_path / "msc" / "default-branch" / "msc_self_instruct.jsonl"
    read = sources.chats(sources.read_native(path), cfg)
    assert len(read.chats) == 3 and read.blank_turns == 1
    assert read.speakers_by_position == 4 + 4 + 3  # previous_dialogs turns carry no id
    first = read.chats[0]
    assert first.source_id == "valid_101" and len(first.sessions) == 3  # two earlier sessions + the current one
    assert first.sessions[1][1] == (USER, "Great, we harvested twelve jars of honey.")
    assert first.sessions[2][0] == (ASSISTANT, "I finally tuned my oboe reed properly today.")
    assert first.questions == (("q0", "How many jars of honey did your hive give, did you say?", "Twelve jars."),)
    assert len(read.chats[1].sessions[1]) == 3  # the blank turn is left out
    third = conversations([read.chats[2]], "msc", LAYOUT, count_words)[0]
    assert third.passage_ids == ("row-2",)
    assert third.text == (
        "Session 1:\nAssistant: My starter is bubbling again.\nUser: Great! I got a stamp from Iceland yesterday."
    )
    assert third.questions[0].question_id == "msc-00000-q0"
    assert third.questions[0].references == ("Yes, it is bubbling again.",)


@pytest.mark.parametrize(
    "edit, field, message",
    [
        (lambda r: r["dialog"][0].update(id="bot_0"), "dialog[0].id", "neither"),
        (lambda r: r["self_instruct"].pop("B"), "self_instruct.B", "missing"),
        (
            lambda r: r["previous_dialogs"][1]["dialog"][0].update(text=3),
            "previous_dialogs[1].dialog[0].text",
            "string",
        ),
        (lambda r: r.update(dialog=[{"id": "Speaker 1", "text": " "}]), "dialog", "without any turn"),
    ],
)
def test_msc_bad_rows_name_file_row_and_field(edit, field, message):
    data = fixture_rows()
    edit(data[0])
    with pytest.raises(DataError, match=message) as info:
        sources.chats(rows_of(data), MscSourceConfig())
    assert (info.value.file, info.value.row, info.value.column) == ("msc.jsonl", 0, field)


def test_swapping_the_speakers_swaps_the_roles():
    swapped = MscSourceConfig(assistant_speaker="Speaker 2", user_speaker="Speaker 1")
    chat = sources.chats(rows_of(fixture_rows()), swapped).chats[0]
    assert chat.sessions[2][0] == (USER, "I finally tuned my oboe reed properly today.")


# ---------------------------------------------------------------- the conversations file and batches
def test_conversations_file_round_trip_and_batches(tmp_path):
    chats = sources.chats(rows_of(fixture_rows()), MscSourceConfig()).chats
    items = conversations(chats, "msc", LAYOUT, count_words)
    path = write_conversations(items, tmp_path / "conversations.parquet")
    assert read_conversations(path) == items
    assert batch_count(3, 2) == 2 and batch_count(4, 2) == 2
    assert [c.context_id for c in batch_conversations(items, 1, 2)] == ["msc-00002"]
    with pytest.raises(ValueError, match="batch 2 does not exist"):
        batch_conversations(items, 2, 2)
    frame = pl.read_parquet(path).with_columns(pl.lit(["x", " "]).alias("sessions").implode().over(pl.lit(1)))
    frame.write_parquet(tmp_path / "bad.parquet")
    with pytest.raises(DataError, match="sessions"):
        read_conversations(tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match="not its sessions joined"):
        Conversation(
            context_id="c",
            benchmark="b",
            length=1,
            text="a",
            num_tokens=1,
            passage_ids=("p",),
            questions=(),
            sessions=("a", "b"),
            session_separator="\n",
        )


# ---------------------------------------------------------------- session streaming vs sequential
def state_allclose(a, b, rtol=1e-4):
    assert a.counts == b.counts
    for name in a.sums:
        scale = a.sums[name].abs().max()
        torch.testing.assert_close(a.sums[name], b.sums[name], atol=rtol * scale, rtol=0)


def states_differ(a, b, rtol=1e-3) -> bool:
    return any(not torch.allclose(a.sums[n], b.sums[n], rtol=rtol, atol=rtol * a.sums[n].abs().max()) for n in a.sums)


def test_session_streaming_equals_sequential_when_window_aligned():
    gam = randomize_generator(ga.GenerativeAdapter(tiny_base(), tiny_adapter_config(window=WINDOW)), std=0.5)
    ids = (torch.arange(5 * WINDOW + 7) * 7 % 128).tolist()
    aligned = [ids[: 2 * WINDOW], ids[2 * WINDOW : 3 * WINDOW], ids[3 * WINDOW :]]  # 2, 1, then 2 + 7/16 windows
    assert window_aligned(aligned, WINDOW)
    sequential = gam.encode(torch.tensor(ids), strategy="sequential", window=WINDOW, chunking="fixed")
    state_allclose(encode_sessions(gam, aligned, WINDOW), sequential)

    # sessions that end inside a window: streaming equals sequential over the session-aligned grid, not plain
    # sequential (whose windows straddle the sessions)
    ragged = [ids[: WINDOW + 5], ids[WINDOW + 5 : 3 * WINDOW + 1], ids[3 * WINDOW + 1 :]]
    assert not window_aligned(ragged, WINDOW)
    streamed = encode_sessions(gam, ragged, WINDOW)
    grid, mask = session_windows(ragged, WINDOW, pad_id=0)
    assert len(grid) == 2 * WINDOW + 2 * WINDOW + 3 * WINDOW and sum(mask) == len(ids)
    state_allclose(
        streamed,
        gam.encode(torch.tensor(grid), torch.tensor(mask), strategy="sequential", window=WINDOW, chunking="fixed"),
    )
    assert states_differ(streamed, sequential)


def aligned_conversation(context_format: ContextFormat, window: int) -> Conversation:
    """A conversation whose sessions fill whole windows of the tiny tokenizer's tokens (filler words " a" added to a
    session's last turn, one token each, until it does)."""
    sessions = [
        [(USER, "Hi, I keep bees and play the oboe."), (ASSISTANT, "Lovely, tell me more!")],
        [(USER, "We harvested twelve jars of honey."), (ASSISTANT, "That is a lot of honey.")],
        [(USER, "My concert is next week."), (ASSISTANT, "Good luck!")],
    ]

    def build() -> Conversation:
        chat = Chat("c", tuple(map(tuple, sessions)), (("q0", "How many jars of honey?", "Twelve jars."),))
        return conversations([chat], "tiny", LAYOUT, count_words)[0]

    for number in range(len(sessions) - 1):
        role, text = sessions[number][-1]
        for filler in range(2 * window):
            sessions[number][-1] = (role, text + " a" * filler)
            if len(session_segments(context_format, build())[number]) % window == 0:
                break
    return build()


def test_session_streaming_method_equals_sequential_on_a_conversation(tiny_model_dir):
    base, tokenizer = load_base(tiny_model_dir)
    gam = randomize_generator(ga.GenerativeAdapter(base, tiny_adapter_config(window=WINDOW)), std=0.5)
    context_format = ContextFormat.from_tokenizer(tokenizer)
    conversation = aligned_conversation(context_format, WINDOW)
    segments = session_segments(context_format, conversation)
    assert sum(segments, []) == context_format.ids(conversation.text)
    assert window_aligned(segments, WINDOW) and len(segments) == 3
    cfg = MscEvalConfig(max_new_tokens=6, batch_size=2)
    contextualized, answers = {}, {}
    for strategy in ("sequential", "session_streaming"):
        settings = MscEvalConfig.from_dict({**cfg.to_dict(), "encode_strategy": strategy})
        method = build_msc_method("generative_adapter", settings, base, tokenizer, generator=gam)
        contextualized[strategy] = method.contextualize(conversation)
        answers[strategy] = method.answer(contextualized[strategy], conversation.questions * 3)
    assert isinstance(method, SessionStreamingAdapter)
    state_allclose(contextualized["session_streaming"].payload, contextualized["sequential"].payload)
    assert answers["session_streaming"] == answers["sequential"]
    streamed = contextualized["session_streaming"]
    assert streamed.notes["sessions"] == 3 and streamed.notes["window_aligned"] == 1
    assert streamed.storage_floats == contextualized["sequential"].storage_floats
    assert streamed.context_tokens == contextualized["sequential"].context_tokens


def test_the_other_user_control_answers_with_the_next_users_adapter(tiny_model_dir):
    """other_user_adapter contextualizes a conversation as the generative adapter contextualizes the next evaluated
    one (cyclically, never itself), then answers this conversation's questions with it."""
    base, tokenizer = load_base(tiny_model_dir)
    gam = randomize_generator(ga.GenerativeAdapter(base, tiny_adapter_config(window=WINDOW)), std=0.5)
    context_format = ContextFormat.from_tokenizer(tokenizer)
    first = aligned_conversation(context_format, WINDOW)
    second = dataclasses.replace(
        first, context_id="other", sessions=first.sessions[:2], text=first.session_separator.join(first.sessions[:2])
    )
    donors = jobs.other_users([first, second])
    assert {key: value.context_id for key, value in donors.items()} == {
        first.context_id: "other",
        "other": first.context_id,
    }
    with pytest.raises(ConfigError, match="at least 2 conversations"):
        jobs.other_users([first])
    cfg = MscEvalConfig(max_new_tokens=4, batch_size=2)
    adapter = build_msc_method("generative_adapter", cfg, base, tokenizer, generator=gam)
    control = build_msc_method("other_user_adapter", cfg, base, tokenizer, generator=gam, donors=donors)
    controlled = control.contextualize(first)
    state_allclose(controlled.payload, adapter.contextualize(second).payload)
    assert controlled.context_tokens == len(context_format.ids(second.text)) != len(context_format.ids(first.text))
    assert control.answer(controlled, first.questions) == adapter.answer(adapter.contextualize(second), first.questions)
    assert control.lora_shapes(controlled) == adapter.lora_shapes(controlled)
    with pytest.raises(ValueError, match="donors"):
        build_msc_method("other_user_adapter", cfg, base, tokenizer, generator=gam)
    with pytest.raises(ValueError, match="no other user's conversation"):
        control.contextualize(dataclasses.replace(first, context_id="unknown"))


def test_session_segments_cut_where_sessions_begin(tiny_model_dir):
    _, tokenizer = load_base(tiny_model_dir)
    context_format = ContextFormat.from_tokenizer(tokenizer)
    chats = sources.chats(rows_of(fixture_rows()), MscSourceConfig()).chats
    item = conversations(chats[:1], "msc", LAYOUT, count_words)[0]
    segments = session_segments(context_format, item)
    assert sum(segments, []) == context_format.ids(item.text) and len(segments) == 3
    assert segments[0][0] == tokenizer.bos_token_id and segments[-1][-1] == tokenizer.eos_token_id
    for segment, number in zip(segments[1:], (2, 3)):
        assert tokenizer.decode(segment).startswith(f"\n\nSession {number}:")
    # a byte-level BPE tokenizer gives a later session, separator and text tokenized on their own, the same ids: a
    # session can be tokenized when it arrives
    alone = [context_format.ids(("\n\n" if index else "") + text) for index, text in enumerate(item.sessions)]
    assert segments == [alone[0][:-1], alone[1][1:-1], alone[2][1:]]


def count_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def test_session_streaming_flops_match_flop_counter():
    gam = randomize_generator(ga.GenerativeAdapter(tiny_base(attn="eager"), tiny_adapter_config(window=WINDOW)))
    segments = [list(range(1, 21)), list(range(30, 35)), list(range(40, 73))]
    chunks, normalizations = costs.session_streaming_chunks([len(s) for s in segments], WINDOW)
    assert chunks == [16, 4, 5, 16, 16, 1] and normalizations == 6
    assert count_flops(lambda: gam.lora(encode_sessions(gam, segments, WINDOW))) == costs.chunks_encode_flops(
        gam, chunks, normalizations, causal=False
    )


# ---------------------------------------------------------------- scorer and results
def test_scorer_cases():
    cases = [
        ("You said twelve jars of honey.", "Twelve jars.", 0.5, 1.0),
        ("It was from 1962", "1962.", 0.4, 1.0),
        ("Twelve jars!", "Twelve jars.", 1.0, 1.0),
        ("nineteen sixty-two", "1962", 0.0, 0.0),
        ("", "Twelve jars.", 0.0, 0.0),
        ("jars twelve", "twelve jars", 1.0, 0.5),
    ]  # F1 is a bag of tokens, ROUGE-L an ordered subsequence
    rows = [
        {"outcome": "answered", "prediction": prediction, "references": [reference]}
        for prediction, reference, _, _ in cases
    ]
    scored = score_rows(rows)
    for row, (_, _, f1, rouge) in zip(scored, cases):
        assert row["f1"] == pytest.approx(f1) and row["rouge_l_recall"] == pytest.approx(rouge)


def test_methods_costs_and_table(tiny_model_dir, tmp_path):
    base, tokenizer = load_base(tiny_model_dir)
    gam = randomize_generator(ga.GenerativeAdapter(base, tiny_adapter_config(window=WINDOW)), std=0.5)
    chats = sources.chats(rows_of(fixture_rows()), MscSourceConfig()).chats
    items = conversations(chats, "msc", LAYOUT, lambda text: len(tokenizer(text).input_ids))
    cfg = MscEvalConfig(max_new_tokens=5, batch_size=4)
    folders = []
    for method_name in ("generative_adapter", "closed_book", "in_context"):
        for batch, chosen in enumerate((items[:2], items[2:])):
            method = build_msc_method(method_name, cfg, base, tokenizer, generator=gam)
            folder = tmp_path / f"{method_name}-{batch}"
            job = {
                "benchmark": "msc",
                "method": method_name,
                "batch": batch,
                "conversations_available": 3,
                "conversations_evaluated": len(chosen),
                "encode_strategy": "sequential" if method_name == "generative_adapter" else None,
            }
            summary = evaluate_conversations(method, chosen, folder, job)
            assert summary["outcomes"] == {"answered": len(chosen)}
            folders.append(folder)
    pooled = {s["method"]: s for s in pooled_summaries(folders)}
    assert all(s["questions"] == 3 and s["batches"] == 2 and s["conversations_evaluated"] == 3 for s in pooled.values())
    assert pooled["closed_book"]["storage_floats"] == 0
    assert pooled["generative_adapter"]["storage_floats"] == costs.lora_floats(costs.generator_lora_shapes(gam))
    kv = sum(costs.kv_cache_floats(base.config, len(tokenizer(c.text).input_ids)) for c in items) / 3
    assert pooled["in_context"]["storage_floats"] == pytest.approx(kv)
    # prompting runs the conversation once (its KV cache is the storage) and every query still attends to it; the
    # adapter's query is the question alone
    assert pooled["in_context"]["per_query_flops"] > pooled["generative_adapter"]["per_query_flops"]
    assert pooled["closed_book"]["per_query_flops"] < pooled["generative_adapter"]["per_query_flops"]

    table = summary_table(list(pooled.values()), paper_msc(), "Mistral-7B-Instruct")
    assert table["method"].to_list() == ["closed_book", "generative_adapter", "in_context"]
    assert table["paper_f1"].to_list() == [8.1, 40.2, 66.0]
    assert table["per_query_tflops"].to_list() == pytest.approx(
        [pooled[m]["per_query_flops"] / 1e12 for m in table["method"].to_list()]
    )
    with pytest.raises(DataError, match="given twice"):
        pooled_summaries(folders + folders[:1])


# ---------------------------------------------------------------- the jobs
def run_config(**msc_eval) -> SimpleNamespace:
    return SimpleNamespace(
        msc_eval=MscEvalConfig.from_dict(msc_eval),
        base_model=BaseModelConfig(),
        run_name="test",
        sft_sources=SimpleNamespace(synthetic_chat=chat_config()),
    )


def test_jobs_end_to_end(tiny_model_dir, tmp_path):
    config = run_config(
        benchmarks=["msc", "synthetic_chat"], conversations_per_batch=2, max_new_tokens=4, msc={"conversations": 3}
    )
    assert jobs.batch_ids(config, "msc") == [0, 1] and jobs.batch_ids(config, "synthetic_chat") == [0, 1]
    calls = []
    logged = jobs.write_benchmark_conversations(
        config,
        "msc",
        tiny_model_dir,
        tmp_path / "msc.parquet",
        cache_dir=tmp_path / "cache",
        fetch_file=fake_fetch(calls),
    )
    assert logged["conversations"] == 3 and logged["source"]["blank_turns"] == 1
    twin = jobs.write_benchmark_conversations(config, "synthetic_chat", tiny_model_dir, tmp_path / "twin.parquet")
    assert twin["conversations"] == 3 and twin["questions"] == 3 * 6
    wrong = run_config(msc={"conversations": 500})
    with pytest.raises(ConfigError, match="msc_eval.msc.conversations: .* holds 3 conversations"):
        jobs.write_benchmark_conversations(
            wrong,
            "msc",
            tiny_model_dir,
            tmp_path / "x.parquet",
            cache_dir=tmp_path / "cache",
            fetch_file=fake_fetch(calls),
        )
    assert not (tmp_path / "x.parquet").exists()

    base, _ = load_base(tiny_model_dir)
    generator_dir = tmp_path / "generator"
    randomize_generator(ga.GenerativeAdapter(base, tiny_adapter_config(window=WINDOW))).save_pretrained(generator_dir)
    folders = []
    for method in ("generative_adapter", "in_context", "other_user_adapter"):
        for batch in jobs.batch_ids(config, "msc"):
            folder = tmp_path / "results" / f"msc-{batch}-{method}"
            summary = jobs.evaluate_batch(
                config,
                "msc",
                method,
                batch,
                tiny_model_dir,
                tmp_path / "msc.parquet",
                folder,
                generator_dir=generator_dir,
                progress=False,
            )
            assert summary["conversations_available"] == 3 and summary["batch"] == batch
            folders.append(folder)
    with pytest.raises(ConfigError, match="generator"):
        jobs.evaluate_batch(
            config, "msc", "generative_adapter", 0, tiny_model_dir, tmp_path / "msc.parquet", tmp_path / "nope"
        )
    result = jobs.collect_results(config, folders, tmp_path / "table.parquet", tmp_path / "table.md")
    assert result == {"rows": 3, "jobs": 6}
    table = pl.read_parquet(tmp_path / "table.parquet")
    assert table["method"].to_list() == ["generative_adapter", "in_context", "other_user_adapter"]
    assert table["questions"].to_list() == [3, 3, 3]
    assert table["encode_strategy"].to_list() == ["sequential", None, "sequential"]
    assert table["paper_f1"].to_list() == [None, None, None]  # a tiny model is not one the paper evaluated
    assert "| msc | generative_adapter | sequential |" in (tmp_path / "table.md").read_text()


def test_a_jobs_params_are_its_own():
    config = run_config()
    changed = run_config(encode_strategy="session_streaming", max_prompt_tokens=64)
    assert jobs.evaluation_depends_on(config, "msc", "closed_book", 0) == jobs.evaluation_depends_on(
        changed, "msc", "closed_book", 0
    )
    assert jobs.evaluation_depends_on(config, "msc", "generative_adapter", 0) != jobs.evaluation_depends_on(
        changed, "msc", "generative_adapter", 0
    )
    assert jobs.evaluation_depends_on(config, "msc", "in_context", "1")["batch"] == 1
    assert jobs.conversations_depends_on(config, "msc") == jobs.conversations_depends_on(changed, "msc")
    assert jobs.conversations_depends_on(
        run_config(msc={"revision": "a" * 40}), "msc"
    ) != jobs.conversations_depends_on(config, "msc")
    capped = run_config(max_conversations=3, conversations_per_batch=2)
    assert jobs.batch_ids(capped, "msc") == [0, 1] and len(jobs.batch_ids(config, "msc")) == 10
