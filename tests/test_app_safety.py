"""The user's commands never lose a user's file, never trust a swapped generator, and end every mistake in one line
(issue 24): run in this process through `ga.cli.main` (a traceback would be an exception here), on the tiny model and
generator of tests/test_app.py.

- `ga export-peft` writes only its two files into a folder the user named, and only with --force if it holds others;
- `ga adapt` never writes over one of its inputs (also through links), nor over a file without --force, and an --out
  that is a folder fails before any model is loaded;
- the generator's weights are checked on every use, and a changed generator is refused with the command that
  re-adapts;
- a device this machine lacks, a truncated generator or adapter, and out-of-range options end in one line;
- progress is logged when stderr is not a terminal, starting with an estimate of the whole time;
- files are written with the umask's mode, not 0600;
- adapters record no local paths unless asked, and those that do (older ones) still work.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_app import REPO, WINDOW, contexts, generator_dir  # noqa: F401  (fixtures)

import ga
from ga.app.adapter import BaseModelSource, make_adapter
from ga.base import load_base
from ga.cli import main as ga_main
from ga.export import PEFT_WEIGHTS
from ga.model import GENERATOR_WEIGHTS

MAX_NEW_TOKENS = "3"
PEFT_CONFIG = "adapter_config.json"
LARGE_CONTEXT_BYTES = 150_000
"""More than two read blocks (ga.app.context.READ_BLOCK_CHARS), so that the first block's rate gives an estimate."""


def ga_run(capsys, *args: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `ga ARGS` run in this process."""
    capsys.readouterr()
    status = ga_main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_line(status: int, err: str, *names: str) -> str:
    assert status == 1, err
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1, err
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@pytest.fixture(scope="module")
def adapter(tmp_path_factory, generator_dir, contexts) -> Path:  # noqa: F811
    """An adapter made by `ga adapt` as a user would, recording no paths (the default)."""
    out = tmp_path_factory.mktemp("safety_adapter") / "doc.adapter.safetensors"
    status = ga_main(
        [
            "adapt",
            "--generator",
            str(generator_dir),
            "--context",
            *map(str, contexts),
            "--out",
            str(out),
            "--device",
            "cpu",
        ]
    )
    assert status == 0
    return out


# ------------------------------------------------------------------ 1. export-peft keeps the user's folder
def test_export_peft_never_deletes_a_users_files(capsys, adapter, generator_dir, tmp_path, monkeypatch):  # noqa: F811
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "mine.txt").write_text("keep")
    command = ["export-peft", "--adapter", str(adapter), "--generator", str(generator_dir), "--out"]
    status, _, err = ga_run(capsys, *command, str(folder))
    assert_one_line(status, err, str(folder), "--force")
    assert sorted(p.name for p in folder.iterdir()) == ["mine.txt"]

    status, _, err = ga_run(capsys, *command, str(folder), "--force")
    assert status == 0, err
    assert sorted(p.name for p in folder.iterdir()) == sorted(["mine.txt", PEFT_CONFIG, PEFT_WEIGHTS])
    assert (folder / "mine.txt").read_text() == "keep"

    # `--out .`: the working folder, once emptied by the atomic replacement of the output folder
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("mine")
    monkeypatch.chdir(work)
    status, _, err = ga_run(capsys, *command, ".")
    assert_one_line(status, err, "--force")
    assert sorted(p.name for p in work.iterdir()) == ["notes.txt"]
    status, _, err = ga_run(capsys, *command, ".", "--force")
    assert status == 0, err
    assert sorted(p.name for p in work.iterdir()) == sorted(["notes.txt", PEFT_CONFIG, PEFT_WEIGHTS])
    assert (work / "notes.txt").read_text() == "mine"

    # a new folder and an empty one need no --force; a file is not a folder
    for out in (tmp_path / "new" / "lora", tmp_path / "empty"):
        (tmp_path / "empty").mkdir(exist_ok=True)
        status, _, err = ga_run(capsys, *command, str(out))
        assert status == 0, err
        assert sorted(p.name for p in out.iterdir()) == sorted([PEFT_CONFIG, PEFT_WEIGHTS])
    status, _, err = ga_run(capsys, *command, str(work / "notes.txt"), "--force")
    assert_one_line(status, err, "notes.txt", "not a folder")
    assert (work / "notes.txt").read_text() == "mine"


# ------------------------------------------------------------------ 2. adapt never overwrites an input or a file
def test_adapt_never_writes_over_an_input_or_an_existing_file(capsys, generator_dir, tmp_path):  # noqa: F811
    notes = tmp_path / "notes.txt"
    notes.write_text("My own notes, not to be lost.\n")
    (tmp_path / "soft.txt").symlink_to(notes)
    os.link(notes, tmp_path / "hard.txt")
    adapt = ["adapt", "--generator", str(generator_dir), "--context", str(notes), "--device", "cpu", "--out"]
    for out in (notes, tmp_path / "soft.txt", tmp_path / "hard.txt", generator_dir / GENERATOR_WEIGHTS):
        for force in ([], ["--force"]):
            status, _, err = ga_run(capsys, *adapt, str(out), *force)
            assert_one_line(status, err, str(out), "input")
    assert notes.read_text() == "My own notes, not to be lost.\n"

    other = tmp_path / "other.safetensors"
    other.write_text("an earlier file")
    status, _, err = ga_run(capsys, *adapt, str(other))
    assert_one_line(status, err, str(other), "--force")
    assert other.read_text() == "an earlier file"
    status, _, err = ga_run(capsys, *adapt, str(other), "--force")
    assert status == 0, err
    assert ga.AdapterState.load(other).num_tokens > 0


def test_adapt_out_naming_a_folder_fails_before_any_model_is_loaded(capsys, contexts, tmp_path):  # noqa: F811
    # the generator does not exist: had it been loaded, that would have been the error
    status, _, err = ga_run(
        capsys,
        "adapt",
        "--generator",
        str(tmp_path / "no_generator"),
        "--context",
        str(contexts[0]),
        "--out",
        str(tmp_path),
    )
    line = assert_one_line(status, err, str(tmp_path), "is a folder")
    assert ".tmp-" not in line and "no_generator" not in line


# ------------------------------------------------------------------ 4. the generator's weights, on every use
def test_a_generator_changed_in_place_is_refused_with_the_readapt_command(
    capsys,
    generator_dir,
    contexts,
    tmp_path,  # noqa: F811
    tiny_model_dir,
):
    generator = tmp_path / "run" / "generator"
    shutil.copytree(generator_dir, generator)
    base_model, tokenizer = load_base(tiny_model_dir)
    gam = ga.GenerativeAdapter.from_pretrained(generator, base_model=base_model)
    # an adapter as `ga adapt` wrote them before paths became optional (format 1): it records every path
    state = make_adapter(gam, tokenizer, contexts, generator, BaseModelSource(str(tiny_model_dir)))
    state.origin = {
        "format": "ga adapt/1",
        "generator": str(generator.absolute()),
        "generator_sha256": state.origin["generator_sha256"],
        "base_model": str(tiny_model_dir),
        "base_model_revision": None,
        "base_model_sha256": state.origin["base_model_sha256"],
        "contexts": [
            {
                "file": str(path.absolute()),
                "bytes": context["bytes"],
                "tokens": context["tokens"],
                "sha256": context["sha256"],
            }
            for path, context in zip(contexts, state.origin["contexts"])
        ],
        "tokens": state.num_tokens,
        "window": WINDOW,
        "ga_version": ga.__version__,
    }
    adapter = tmp_path / "old.adapter.safetensors"
    state.save(adapter, lora=gam.lora(state))
    ask = ["ask", "--adapter", str(adapter), "--device", "cpu", "--max-new-tokens", MAX_NEW_TOKENS, "question?"]
    status, out, err = ga_run(capsys, *ask)
    assert status == 0 and out.strip(), err  # an adapter that records paths still loads, without --generator

    with torch.no_grad():  # retrain in place
        for weight in gam.generators.parameters():
            weight.add_(0.01)
    gam.save_pretrained(generator)
    for command in (
        ask,
        ["chat", "--adapter", str(adapter), "--device", "cpu"],
        ["export-peft", "--adapter", str(adapter), "--out", str(tmp_path / "lora")],
    ):
        status, _, err = ga_run(capsys, *command)
        line = assert_one_line(status, err, str(adapter), "another generator", str(generator / GENERATOR_WEIGHTS))
        assert f"ga adapt --generator {generator} --context {contexts[0]} {contexts[1]}" in line
        assert f"--out {adapter} --force" in line
    assert not (tmp_path / "lora").exists()


# ------------------------------------------------------------------ 6, 7. one line for each mistake
@pytest.mark.parametrize(
    "case",
    [
        "device_tpu",
        "device_cuda",
        "window_zero",
        "max_new_tokens_zero",
        "max_new_tokens_negative",
        "chat_max_new_tokens_zero",
        "empty_question",
        "blank_question",
    ],
)
def test_options_out_of_range_end_in_one_line(case, capsys, adapter, generator_dir, contexts, tmp_path):  # noqa: F811
    if case == "device_cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "out.safetensors"
    adapt = ["adapt", "--generator", str(generator_dir), "--context", str(contexts[0]), "--out", str(out)]
    ask = ["ask", "--adapter", str(adapter), "--generator", str(generator_dir), "--device", "cpu"]
    command, names = {
        "device_tpu": ([*adapt, "--device", "tpu"], ["--device tpu", "cpu or cuda"]),
        "device_cuda": ([*ask[:-2], "--device", "cuda", "q"], ["--device cuda", "CUDA"]),
        "window_zero": ([*adapt, "--window", "0"], ["--window 0"]),
        "max_new_tokens_zero": ([*ask, "--max-new-tokens", "0", "q"], ["--max-new-tokens 0"]),
        "max_new_tokens_negative": ([*ask, "--max-new-tokens", "-3", "q"], ["--max-new-tokens -3"]),
        "chat_max_new_tokens_zero": (
            ["chat", "--adapter", str(adapter), "--max-new-tokens", "0"],
            ["--max-new-tokens 0"],
        ),
        "empty_question": ([*ask, ""], ["question", "empty"]),
        "blank_question": ([*ask, "  \t "], ["question", "empty"]),
    }[case]
    status, out_text, err = ga_run(capsys, *command)
    assert_one_line(status, err, *names)
    assert not out_text and not out.exists()


def test_a_negative_window_ends_in_one_line(generator_dir, contexts, tmp_path):  # noqa: F811
    """In a subprocess with a time limit: it once looped forever."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ga.cli",
            "adapt",
            "--generator",
            str(generator_dir),
            "--context",
            str(contexts[0]),
            "--out",
            str(tmp_path / "out"),
            "--window",
            "-4",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert_one_line(result.returncode, result.stderr, "--window -4", "at least 1")


def test_a_truncated_generator_or_adapter_is_named(capsys, adapter, generator_dir, contexts, tmp_path):  # noqa: F811
    cut_generator = tmp_path / "cut_generator"
    shutil.copytree(generator_dir, cut_generator)
    weights = cut_generator / GENERATOR_WEIGHTS
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    status, _, err = ga_run(
        capsys,
        "adapt",
        "--generator",
        str(cut_generator),
        "--context",
        str(contexts[0]),
        "--out",
        str(tmp_path / "out.safetensors"),
        "--device",
        "cpu",
    )
    assert_one_line(status, err, str(weights), "truncated")
    status, _, err = ga_run(capsys, "ask", "--adapter", str(adapter), "--generator", str(cut_generator), "q")
    assert_one_line(status, err, str(weights), "truncated")

    cut_adapter = tmp_path / "cut.adapter.safetensors"
    cut_adapter.write_bytes(adapter.read_bytes()[:-100])
    status, _, err = ga_run(capsys, "ask", "--adapter", str(cut_adapter), "--generator", str(generator_dir), "q")
    assert_one_line(status, err, str(cut_adapter), "truncated")


# ------------------------------------------------------------------ 8. progress without a terminal
class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_log_is_silent_below_its_size():
    from ga.app.progress import ProgressLog

    stream, now = io.StringIO(), [0.0]
    progress = ProgressLog("adapt", 1000, stream, clock=lambda: now[0], log_from_bytes=1001)
    for _ in range(10):  # however slow
        progress.update(100)
        now[0] += 600
    assert stream.getvalue() == ""


def test_progress_log_estimates_first_then_logs_every_tenth_or_few_minutes():
    from ga.app.progress import ProgressLog, format_duration

    clock, stream = FakeClock(), io.StringIO()
    progress = ProgressLog(
        "adapt", 1000, stream, every_fraction=0.1, every_seconds=300, clock=clock, log_from_bytes=1000
    )
    progress.update(50)
    assert stream.getvalue() == ""  # nothing is measured before the first block is done
    clock.now = 60.0
    progress.update(50)  # the first 50 bytes took a minute: 1000 bytes take 20 minutes
    lines = stream.getvalue().splitlines()
    assert lines == ["adapt: 1.0 KB to read; about 20m00s in all (measured on the first 50 B, 1m00s)"]
    clock.now = 120.0
    progress.update(50)  # 100 of 1000 done: a tenth
    assert stream.getvalue().splitlines()[1] == "adapt: 10% (100 B of 1.0 KB), 2m00s elapsed, about 18m00s left"
    clock.now = 130.0
    progress.update(10)  # 150 done: no new tenth, no five minutes since the last line
    assert len(stream.getvalue().splitlines()) == 2
    clock.now = 430.0
    progress.update(10)  # five minutes since the last line
    assert len(stream.getvalue().splitlines()) == 3
    assert format_duration(5400) == "1h30m" and format_duration(12) == "12s"


def test_adapt_logs_progress_when_stderr_is_not_a_terminal(capsys, generator_dir, tmp_path):  # noqa: F811
    large = tmp_path / "large.txt"
    line = "The glassworks fires its furnace at dawn and cools the sheets by noon.\n"
    large.write_text(line * (LARGE_CONTEXT_BYTES // len(line)))
    status, _, err = ga_run(
        capsys,
        "adapt",
        "--generator",
        str(generator_dir),
        "--context",
        str(large),
        "--out",
        str(tmp_path / "large.adapter.safetensors"),
        "--device",
        "cpu",
        "--window",
        str(8 * WINDOW),
    )
    assert status == 0, err
    lines = err.strip().splitlines()
    assert lines[0].startswith("adapt: ") and "in all (measured on the first" in lines[0], err
    assert any("% (" in line and "left" in line for line in lines[1:]), err


# ------------------------------------------------------------------ 9. files follow the umask
def test_written_files_follow_the_umask(capsys, adapter, generator_dir, tmp_path):  # noqa: F811
    mode = 0o666 & ~current_umask()
    assert adapter.stat().st_mode & 0o777 == mode
    out = tmp_path / "lora"
    status, _, err = ga_run(
        capsys, "export-peft", "--adapter", str(adapter), "--generator", str(generator_dir), "--out", str(out)
    )
    assert status == 0, err
    for name in (PEFT_CONFIG, PEFT_WEIGHTS):
        assert (out / name).stat().st_mode & 0o777 == mode, name
    assert (generator_dir / GENERATOR_WEIGHTS).stat().st_mode & 0o777 == mode


# ------------------------------------------------------------------ 10. no local paths unless asked
def test_adapters_record_no_local_paths_unless_asked(capsys, adapter, generator_dir, contexts, tmp_path):  # noqa: F811
    state = ga.AdapterState.load(adapter)
    header = adapter.read_bytes()[:200_000].decode("latin-1")
    for path in (generator_dir, contexts[0], contexts[0].parent, Path.home(), Path("/tmp")):
        assert str(path.absolute()) not in header, path
    assert [c["name"] for c in state.origin["contexts"]] == [p.name for p in contexts]
    assert all(len(c["sha256"]) == 64 and c["bytes"] > 0 for c in state.origin["contexts"])
    assert len(state.origin["generator_sha256"]) == 64 and state.origin["base_model_name"]

    status, _, err = ga_run(capsys, "ask", "--adapter", str(adapter), "--device", "cpu", "q")
    assert_one_line(status, err, str(adapter), "--generator")
    status, out, err = ga_run(
        capsys,
        "ask",
        "--adapter",
        str(adapter),
        "--generator",
        str(generator_dir),
        "--device",
        "cpu",
        "--max-new-tokens",
        MAX_NEW_TOKENS,
        "q",
    )
    assert status == 0 and out.strip(), err

    recorded = tmp_path / "recorded.adapter.safetensors"
    status, _, err = ga_run(
        capsys,
        "adapt",
        "--generator",
        str(generator_dir),
        "--context",
        str(contexts[0]),
        "--out",
        str(recorded),
        "--device",
        "cpu",
        "--record-paths",
    )
    assert status == 0, err
    origin = ga.AdapterState.load(recorded).origin
    assert origin["generator"] == str(generator_dir.absolute())
    assert origin["contexts"][0]["file"] == str(contexts[0].absolute())
    status, out, err = ga_run(
        capsys, "ask", "--adapter", str(recorded), "--device", "cpu", "--max-new-tokens", MAX_NEW_TOKENS, "q"
    )
    assert status == 0 and out.strip(), err
