"""ga.io: atomic folders and files (no partial output, leftovers of killed builds cleaned), hashing."""

from __future__ import annotations

import pytest

from ga.io import atomic_dir, atomic_file, read_json, read_yaml, sha256_json, write_json, write_text


def test_atomic_dir_renames_on_success_and_cleans_leftovers(tmp_path):
    target = tmp_path / "model"
    stale = tmp_path / ".model.tmp-999-deadbeef"  # what a killed build leaves behind
    stale.mkdir()
    with atomic_dir(target) as build:
        assert build.parent == tmp_path and build != target
        (build / "weights").write_text("w")
        assert not target.exists()
    assert (target / "weights").read_text() == "w"
    assert not stale.exists()
    assert not any(p.name.startswith(".model.tmp-") for p in tmp_path.iterdir())


def test_atomic_dir_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(ValueError):
        with atomic_dir(target) as build:
            (build / "half").write_text("h")
            raise ValueError("interrupted")
    assert not target.exists()
    assert not any(p.name.startswith(".model.tmp-") for p in tmp_path.iterdir())


def test_atomic_dir_replaces_or_keeps_existing(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "v").write_text("first")
    with atomic_dir(target, replace=False) as build:  # a shared cache: someone else finished first, keep theirs
        (build / "v").write_text("second")
    assert (target / "v").read_text() == "first"
    with atomic_dir(target) as build:
        (build / "v").write_text("third")
    assert (target / "v").read_text() == "third"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["model"]


def test_atomic_dir_keeps_the_folder_of_a_live_builder(tmp_path):
    import os

    target = tmp_path / "out"
    live = tmp_path / f".out.tmp-{os.getppid()}-cafe0001"  # a running process (our parent) is building here
    live.mkdir()
    with atomic_dir(target) as build:
        (build / "x").write_text("x")
    assert live.exists() and (target / "x").is_file()
    assert not any(p.name.endswith(".lock") for p in tmp_path.iterdir()), "a stage output needs no lock file"


def test_atomic_file_and_text_helpers(tmp_path):
    path = tmp_path / "sub" / "x.json"
    write_json({"b": 1, "a": [1, 2]}, path)
    assert read_json(path) == {"a": [1, 2], "b": 1}
    with pytest.raises(RuntimeError):
        with atomic_file(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert read_json(path) == {"a": [1, 2], "b": 1}
    assert [p.name for p in path.parent.iterdir()] == ["x.json"]
    mtime = path.stat().st_mtime_ns
    write_text(path.read_text(), path, only_if_changed=True)
    assert path.stat().st_mtime_ns == mtime
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1,\n")
    with pytest.raises(ValueError, match="bad.yaml"):
        read_yaml(bad)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        read_json(tmp_path / "missing.json")
    assert sha256_json({"a": 1, "b": 2}) == sha256_json({"b": 2, "a": 1})
