"""The user's commands (ga/app): `ga adapt` -> `ga ask` / `ga chat` / `ga export-peft` through the real command line
(subprocesses), on a tiny random base model and a generator saved on the spot.

- streaming adaptation over several files equals `encode(..., strategy="streaming")` of their concatenated ids (and
  the blockwise tokenization equals the whole files' tokenization);
- `ga ask` answers as the in-process chat session does; `ga export-peft` loads with PEFT and gives the logits of the
  in-model adapter;
- every expected mistake ends with one line on stderr, exit status 1, no traceback and no output file;
- `ga chat` driven as a person would, under tmux: the second turn sees the first, /exit ends it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY_LLAMA_CONFIG
from tiny_models import randomize_generator

import ga
from ga.app.adapter import BaseModelSource, make_adapter, open_adapter
from ga.app.chat import ChatSession
from ga.app.context import ContextTokenizer, check_context_file
from ga.base import load_base
from ga.format import ContextFormat

REPO = Path(__file__).resolve().parents[1]
WINDOW = 32
MAX_NEW_TOKENS = 6
CONTEXT_ONE = (
    "The assignment statement binds names to objects.  Targets  are evaluated\n\n\nleft to right; "
    "a café's naïve menu ✓ costs 12345 coins. <|im_end|> stays text here.\n"
) * 6
CONTEXT_TWO = "A class definition defines a class object.\n\tIts suite runs in a new frame.\n" * 5


def gacli(*args: str, input_text: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`ga ARGS` in a fresh process, with this checkout first on the path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(
        [sys.executable, "-m", "ga.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        input=input_text,
        timeout=timeout,
        cwd=REPO,
    )


@pytest.fixture(scope="module")
def generator_dir(tmp_path_factory, tiny_model_dir) -> Path:
    """A generator for the tiny base model with random (nonzero) weights everywhere, so its delta is not zero."""
    base_model, _ = load_base(tiny_model_dir)
    config = ga.GenerativeAdapterConfig(
        inter_size=16,
        rank=4,
        alpha=8,
        window=WINDOW,
        target_modules=["o_proj", "mlp.down_proj"],
        base_model_id=str(tiny_model_dir),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        gam = randomize_generator(ga.GenerativeAdapter(base_model, config), std=0.5)
    directory = tmp_path_factory.mktemp("generator") / "generator"
    gam.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def contexts(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("contexts")
    paths = [folder / "one.txt", folder / "two.txt"]
    paths[0].write_text(CONTEXT_ONE)
    paths[1].write_text(CONTEXT_TWO)
    return paths


@pytest.fixture(scope="module")
def adapter_file(tmp_path_factory, generator_dir, contexts) -> Path:
    """Made with --record-paths, so that the commands below find the generator without --generator."""
    out = tmp_path_factory.mktemp("adapter") / "doc.adapter.safetensors"
    result = gacli(
        "adapt",
        "--generator",
        str(generator_dir),
        "--context",
        *map(str, contexts),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--record-paths",
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return out


def load_gam(tiny_model_dir, generator_dir):
    base_model, tokenizer = load_base(tiny_model_dir)
    return ga.GenerativeAdapter.from_pretrained(generator_dir, base_model=base_model), tokenizer


def test_blockwise_tokenization_is_the_whole_files(tiny_model_dir, contexts):
    _, tokenizer = load_base(tiny_model_dir)
    context_format = ContextFormat.from_tokenizer(tokenizer)
    for block_chars in (7, 50, 1 << 16):
        reader = ContextTokenizer(context_format, block_chars)
        for path in contexts:
            ids = [i for piece in reader.file_ids(check_context_file(path)) for i in piece]
            assert ids == context_format.ids(path.read_text()), block_chars


def test_streaming_adapt_equals_encoding_the_concatenation(tiny_model_dir, generator_dir, contexts):
    gam, tokenizer = load_gam(tiny_model_dir, generator_dir)
    context_format = ContextFormat.from_tokenizer(tokenizer)
    base = BaseModelSource(str(tiny_model_dir))
    state = make_adapter(gam, tokenizer, contexts, generator_dir, base, block_chars=50)
    ids = [i for path in contexts for i in context_format.ids(path.read_text())]
    assert len(ids) > 3 * WINDOW and len(context_format.ids(CONTEXT_ONE)) % WINDOW  # windows cross the file boundary
    expected = gam.encode(ids, strategy="streaming", window=WINDOW, chunking="fixed")
    assert state.counts == expected.counts
    for name in expected.sums:
        assert torch.equal(state.sums[name], expected.sums[name]), name
    # ... and, as the API defines streaming, the windowed (sequential) encoding evaluation uses
    sequential = gam.encode(ids, strategy="sequential", window=WINDOW, chunking="fixed")
    for name in expected.sums:
        torch.testing.assert_close(state.sums[name], sequential.sums[name], rtol=1e-4, atol=1e-4)
    assert state.origin["tokens"] == len(ids)
    assert [c["tokens"] for c in state.origin["contexts"]] == [len(context_format.ids(p.read_text())) for p in contexts]


def test_adapt_then_ask_end_to_end(tiny_model_dir, generator_dir, adapter_file):
    state = ga.AdapterState.load(adapter_file)
    assert state.origin["generator"] == str(generator_dir.absolute())
    assert state.origin["base_model"] == str(Path(tiny_model_dir).absolute())
    assert state.lora is not None  # serves without the generator too
    question = "What does the assignment statement do?"
    result = gacli(
        "ask", "--adapter", str(adapter_file), "--max-new-tokens", str(MAX_NEW_TOKENS), "--device", "cpu", question
    )
    assert result.returncode == 0, result.stderr
    gam, tokenizer, loaded = open_adapter(adapter_file, device="cpu")
    with ChatSession(gam, tokenizer, loaded, MAX_NEW_TOKENS) as session:
        expected = session.reply(question)
    with ChatSession(gam, tokenizer, gam.empty_state(), MAX_NEW_TOKENS) as session:
        unadapted = session.reply(question)
    assert expected != unadapted  # the adapter changes the answer, so the test sees whether it was applied
    assert result.stdout.strip() == expected


def test_export_peft_loads_with_peft_and_matches_the_in_model_adapter(tiny_model_dir, adapter_file, tmp_path):
    from peft import PeftModel

    out = tmp_path / "doc_lora"
    result = gacli("export-peft", "--adapter", str(adapter_file), "--out", str(out))
    assert result.returncode == 0, result.stderr
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] > 0 and config["target_modules"]
    gam, _, state = open_adapter(adapter_file, device="cpu")
    ids = torch.arange(3, 40).unsqueeze(0)
    with torch.no_grad(), gam.adapted(state) as model:
        expected = model(ids).logits
    base_model, _ = load_base(tiny_model_dir)
    with torch.no_grad():
        plain = base_model(ids).logits
        peft_model = PeftModel.from_pretrained(base_model, str(out)).eval()
        got = peft_model(ids).logits
    assert not torch.allclose(expected, plain, atol=1e-3)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ expected mistakes: one line, no traceback
def assert_one_line_error(result, *names: str) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def other_base_model(tmp_path_factory, tiny_tokenizer_dir) -> Path:
    """A tiny model of another width: the generator does not fit it."""
    from ga.tiny import tiny_random_model_dir

    config = {**TINY_LLAMA_CONFIG, "hidden_size": 32, "num_attention_heads": 2, "num_key_value_heads": 1}
    return tiny_random_model_dir(
        tmp_path_factory.mktemp("other") / "model", config, tokenizer_from=tiny_tokenizer_dir, seed=1
    )


@pytest.mark.parametrize("case", ["missing", "binary", "not_utf8", "empty", "blank"])
def test_adapt_rejects_a_bad_context_file_in_one_line(case, generator_dir, contexts, tmp_path):
    path = tmp_path / f"{case}.txt"
    content = {
        "binary": b"PK\x03\x04\x00\x00 zip bytes",
        "not_utf8": b"caf\xe9 au lait",
        "empty": b"",
        "blank": b"  \n\n\t  \n" * 3,
    }.get(case)
    if content is not None:
        path.write_bytes(content)
    out = tmp_path / "out.safetensors"
    result = gacli(
        "adapt",
        "--generator",
        str(generator_dir),
        "--context",
        str(contexts[0]),
        str(path),
        "--out",
        str(out),
        "--device",
        "cpu",
    )
    assert_one_line_error(result, str(path))
    assert not out.exists()


def test_adapt_with_a_generator_for_another_base_model(generator_dir, other_base_model, contexts, tmp_path):
    out = tmp_path / "out.safetensors"
    result = gacli(
        "adapt",
        "--generator",
        str(generator_dir),
        "--base-model",
        str(other_base_model),
        "--context",
        str(contexts[0]),
        "--out",
        str(out),
        "--device",
        "cpu",
    )
    line = assert_one_line_error(result, str(generator_dir), "does not fit base model")
    assert "hidden_size" in line
    assert not out.exists()


def test_adapt_with_a_folder_that_is_no_generator(contexts, tmp_path):
    result = gacli("adapt", "--generator", str(tmp_path), "--context", str(contexts[0]), "--out", str(tmp_path / "x"))
    assert_one_line_error(result, str(tmp_path), "not a generator folder")


def test_ask_with_a_file_that_is_no_adapter(contexts, tmp_path):
    from safetensors.torch import save_file

    assert_one_line_error(gacli("ask", "--adapter", str(contexts[0]), "q"), str(contexts[0]), "not an adapter file")
    other = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(2)}, str(other))
    assert_one_line_error(gacli("ask", "--adapter", str(other), "q"), str(other), "not an adapter file")
    missing = tmp_path / "missing.safetensors"
    assert_one_line_error(gacli("ask", "--adapter", str(missing), "q"), str(missing), "does not exist")


def test_ask_on_another_base_model_or_generator(adapter_file, other_base_model, tiny_model_dir, tmp_path):
    result = gacli("ask", "--adapter", str(adapter_file), "--base-model", str(other_base_model), "q")
    assert_one_line_error(result, "does not fit base model")
    # the same architecture with other weights: the adapter's record of the base weights tells them apart
    from ga.tiny import tiny_random_model_dir

    same_shape = tiny_random_model_dir(
        tmp_path / "same_shape", TINY_LLAMA_CONFIG, tokenizer_from=tiny_model_dir, seed=7
    )
    result = gacli("ask", "--adapter", str(adapter_file), "--base-model", str(same_shape), "q")
    assert_one_line_error(result, str(adapter_file), "another base model")
    moved = tmp_path / "moved_generator"
    shutil.copytree(Path(ga.AdapterState.load(adapter_file).origin["generator"]), moved)
    (moved / "generator.safetensors").write_bytes(b"")
    result = gacli("ask", "--adapter", str(adapter_file), "--generator", str(moved), "q")
    assert_one_line_error(result, str(adapter_file), "another generator")


# ------------------------------------------------------------------ ga chat, driven as a person would
def tmux_available() -> bool:
    if shutil.which("tmux"):
        return True
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "tmux"], capture_output=True, stdin=subprocess.DEVNULL, timeout=600
        )
    return shutil.which("tmux") is not None


def wait_for(condition, timeout: float, what: str, screen=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}" + (f"; screen:\n{screen()}" if screen else ""))


def test_chat_under_tmux_keeps_history_and_exits(adapter_file, tmp_path):
    if not tmux_available():
        pytest.skip("tmux is not installed and cannot be installed here")
    session, transcript, status = f"ga-chat-{os.getpid()}", tmp_path / "chat.json", tmp_path / "status"
    env = f"PYTHONPATH={REPO}"
    command = (
        f"cd {REPO} && {env} {sys.executable} -m ga.cli chat --adapter {adapter_file} --device cpu "
        f"--max-new-tokens {MAX_NEW_TOKENS} --transcript {transcript}; echo $? > {status}"
    )
    tmux = ["tmux", "-L", session]  # a private server: nothing else of the user's tmux is touched
    subprocess.run([*tmux, "new-session", "-d", "-s", session, "-x", "160", "-y", "50", command], check=True)

    def screen() -> str:
        return subprocess.run([*tmux, "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout

    def turns() -> int:
        return len(json.loads(transcript.read_text())["messages"]) // 2 if transcript.exists() else 0

    try:
        wait_for(lambda: "you>" in screen(), 120, "the chat prompt", screen)
        questions = ["What binds names to objects?", "And what runs in a new frame?"]
        for number, question in enumerate(questions, start=1):
            subprocess.run([*tmux, "send-keys", "-t", session, "-l", question], check=True)
            subprocess.run([*tmux, "send-keys", "-t", session, "Enter"], check=True)
            wait_for(lambda number=number: turns() >= number, 120, f"reply {number}", screen)
        assert screen().count("ga>") >= 2
        subprocess.run([*tmux, "send-keys", "-t", session, "-l", "/exit"], check=True)
        subprocess.run([*tmux, "send-keys", "-t", session, "Enter"], check=True)
        wait_for(status.exists, 60, "the chat to end after /exit", screen)
        assert status.read_text().strip() == "0"
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)

    messages = json.loads(transcript.read_text())["messages"]
    assert [m["content"] for m in messages[0::2]] == questions
    gam, tokenizer, state = open_adapter(adapter_file, device="cpu")
    with ChatSession(gam, tokenizer, state, MAX_NEW_TOKENS) as chat:
        assert chat.reply(questions[0]) == messages[1]["content"]
        assert chat.reply(questions[1]) == messages[3]["content"]  # the second turn saw the first
    with ChatSession(gam, tokenizer, state, MAX_NEW_TOKENS) as fresh:
        without_history = fresh.prompt_ids(questions[1])
    with ChatSession(gam, tokenizer, state, MAX_NEW_TOKENS) as chat:
        chat.messages = messages[:2]
        assert len(chat.prompt_ids(questions[1])) > len(without_history)


def test_chat_ends_at_end_of_input(adapter_file):
    result = gacli(
        "chat", "--adapter", str(adapter_file), "--device", "cpu", "--max-new-tokens", "2", input_text="hello\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ga>") == 1
