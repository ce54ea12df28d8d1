"""The pipeline's stage commands (`ga <rule> ...`) end a user's mistake in one line naming the file or key, with exit
status 1 and no traceback: empty, corrupt, binary or missing input files, and bad config files, keys and values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "config" / "smoke.yaml"


def stage(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(
        [sys.executable, "-m", "ga.cli", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


def one_line(result) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    # a progress bar that was running may precede the message on its line (carriage returns), never other lines
    lines = [line.rsplit("\r", 1)[-1] for line in result.stderr.strip().splitlines()]
    errors = [line for line in lines if line.startswith("ga ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    return errors[0]


LOCAL_FILES = {
    "empty.jsonl": (b"", "empty file"),
    "empty.parquet": (b"", "Parquet"),
    "corrupt.parquet": (b"PAR1 this is not a parquet file", "Parquet"),
    "binary.txt": (b"text\x00\x01\x02", "binary"),
    "latin1.txt": (b"caf\xe9", "UTF-8"),
    "blank.txt": (b"  \n\n", "empty file"),
    "badrow.jsonl": (b'{"text": "fine"}\n{"text": oops}\n', "row 1"),
}


@pytest.mark.parametrize("name", sorted(LOCAL_FILES))
def test_pretrain_documents_names_a_bad_local_file(name, tiny_model_dir, tmp_path):
    content, problem = LOCAL_FILES[name]
    path = tmp_path / name
    path.write_bytes(content)
    out = tmp_path / "documents"
    result = stage(
        "pretrain_documents",
        "--config",
        str(SMOKE),
        "--set",
        "pretrain_data.source=local",
        "--set",
        f"pretrain_data.local.paths=[{path}]",
        "--base-model",
        str(tiny_model_dir),
        "--documents",
        str(out),
        cwd=tmp_path,
    )
    line = one_line(result)
    assert str(path) in line and problem in line, line
    assert not out.exists()


@pytest.mark.parametrize("given", ["file", "folder_without_manifest", "corrupt_manifest"])
def test_pretrain_data_names_a_bad_documents_folder(given, tiny_model_dir, tmp_path):
    documents = tmp_path / "documents"
    if given == "file":
        documents.write_bytes(b"")
    else:
        documents.mkdir()
        if given == "corrupt_manifest":
            (documents / "manifest.json").write_text("{not json")
    result = stage(
        "pretrain_data",
        "--config",
        str(SMOKE),
        "--documents",
        str(documents),
        "--base-model",
        str(tiny_model_dir),
        "--train",
        str(tmp_path / "train"),
        "--val",
        str(tmp_path / "val"),
        cwd=tmp_path,
    )
    assert str(documents) in one_line(result)
    assert not (tmp_path / "train").exists() and not (tmp_path / "val").exists()


def test_knowledge_eval_names_an_empty_contexts_file(tiny_model_dir, tmp_path):
    contexts = tmp_path / "contexts.parquet"
    contexts.write_bytes(b"")
    result = stage(
        "knowledge_eval",
        "--config",
        str(SMOKE),
        "--benchmark",
        "fictional",
        "--method",
        "closed_book",
        "--length",
        "256",
        "--base-model",
        str(tiny_model_dir),
        "--contexts",
        str(contexts),
        "--results",
        str(tmp_path / "results"),
        cwd=tmp_path,
    )
    assert str(contexts) in one_line(result)


@pytest.mark.parametrize("problem", ["unknown_key", "bad_value", "not_yaml", "missing"])
def test_a_bad_config_is_one_line(problem, tiny_model_dir, tmp_path):
    config, overrides = SMOKE, []
    if problem == "unknown_key":
        overrides = ["--set", "pretrain_data.no_such_key=1"]
    elif problem == "bad_value":
        overrides = ["--set", "seed=many"]
    elif problem == "not_yaml":
        config = tmp_path / "config.yaml"
        config.write_text("run_name: [unclosed\n")
    else:
        config = tmp_path / "missing.yaml"
    result = stage(
        "pretrain_documents",
        "--config",
        str(config),
        *overrides,
        "--base-model",
        str(tiny_model_dir),
        "--documents",
        str(tmp_path / "documents"),
        cwd=tmp_path,
    )
    line = one_line(result)
    expected = {
        "unknown_key": "pretrain_data.no_such_key",
        "bad_value": "seed",
        "not_yaml": str(config),
        "missing": str(config),
    }[problem]
    assert expected in line, line
