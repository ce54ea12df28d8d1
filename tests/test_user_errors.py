"""One base for every mistake a user can fix (`ga.errors.UserError`), and one reporter: `ga <command>: <one line>`
on stderr, exit status 1."""

from __future__ import annotations

import ast
import inspect
import sys
from pathlib import Path

import pytest

from ga import errors
from ga.errors import REPORTED_ERRORS, UnreadableFile, UserError, is_user_error, reading, report

REPO = Path(__file__).resolve().parents[1]
NOT_USER_ERRORS = {"ga/report/dag.py": {"DagUnavailable"}}
"""Exception classes defined outside ga/errors.py, each for a failure that is not the user's to fix; the report
catches DagUnavailable and draws the page without its rule graph."""


def user_error_classes() -> list[type[UserError]]:
    return [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, BaseException) and cls.__module__ == errors.__name__ and cls is not UserError
    ]


def example(cls: type[UserError]) -> UserError:
    """An instance whose message runs over two lines, as pandera's and jsonschema's do."""
    if cls is errors.DataError:
        return cls("data/x.parquet", 3, "text", "empty\nand blank")
    return cls("config/x.yaml: key\nsecond line")


def exception_bases(node: ast.ClassDef) -> list[str]:
    return [
        ast.unparse(base)
        for base in node.bases
        if ast.unparse(base).split(".")[-1].endswith(("Error", "Exception", "File"))
    ]


def test_every_exception_class_of_ga_is_a_user_error_defined_in_errors():
    outside = {}
    for path in sorted((REPO / "ga").rglob("*.py")):
        relative = str(path.relative_to(REPO))
        if relative == "ga/errors.py":
            continue
        classes = {
            node.name
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ClassDef) and exception_bases(node)
        }
        if classes - NOT_USER_ERRORS.get(relative, set()):
            outside[relative] = sorted(classes)
    assert outside == {}, "define user errors in ga/errors.py, deriving from UserError"
    assert {cls.__name__ for cls in user_error_classes()} >= {
        "ConfigError",
        "DataError",
        "BaseModelError",
        "UnreadableFile",
        "UsageError",
        "SplitFormatError",
    }
    assert all(issubclass(cls, UserError) for cls in user_error_classes())


def test_the_old_names_are_the_same_classes():
    from ga.base import BaseModelError
    from ga.data.contracts import DataError
    from ga.data.examples import SplitFormatError
    from ga.section import ConfigError

    assert (BaseModelError, DataError, SplitFormatError, ConfigError) == (
        errors.BaseModelError,
        errors.DataError,
        errors.SplitFormatError,
        errors.ConfigError,
    )


@pytest.mark.parametrize("cls", user_error_classes(), ids=lambda cls: cls.__name__)
def test_the_reporter_prints_one_line_for_each_user_error(cls, capsys):
    try:
        raise example(cls)
    except REPORTED_ERRORS as err:
        assert is_user_error(err)
        status = report("stage", err)
    assert status == 1
    expected = (
        "ga stage: data/x.parquet: row 3, column 'text': empty; and blank"
        if cls is errors.DataError
        else "ga stage: config/x.yaml: key; second line"
    )
    assert capsys.readouterr().err.splitlines() == [expected]


@pytest.mark.parametrize(
    "err,expected",
    [
        (PermissionError(13, "Permission denied", "data/x.json"), True),
        (FileNotFoundError("no such file"), True),
        (OSError(28, "No space left on device"), False),  # a library's failure inside, no file named
    ],
)
def test_an_os_error_is_the_users_only_when_it_names_a_file(err, expected):
    assert is_user_error(err) is expected


class LibraryError(Exception):
    """Stands for a table library's error base (Arrow's, Polars'), which derives from neither OSError nor
    ValueError."""


def test_reading_converts_the_library_errors_it_is_given(tmp_path):
    path = tmp_path / "x.parquet"
    with pytest.raises(UnreadableFile, match=r"x.parquet: not a readable Parquet file \(bad footer\)"):
        with reading(path, "Parquet file", (LibraryError,)):
            raise LibraryError("bad footer")
    with pytest.raises(LibraryError):  # not given: not a reading failure
        with reading(path, "Parquet file"):
            raise LibraryError("bad footer")
    with pytest.raises(UnreadableFile, match="x.parquet: does not exist"):
        with reading(path):
            raise FileNotFoundError(str(path))


def test_reading_lets_errors_that_name_the_problem_pass(tmp_path):
    with pytest.raises(errors.DataError, match="row 3"):
        with reading(tmp_path / "x.parquet", "Parquet file"):
            raise example(errors.DataError)


def test_errors_imports_only_the_standard_library():
    tree = ast.parse((REPO / "ga" / "errors.py").read_text())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= set(sys.stdlib_module_names)
