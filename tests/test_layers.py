"""The packages of `ga` import downward only (docs/design.md#layers): a module may import from its own layer and the
layers below it, never from a layer above. Every import counts, those inside functions and `TYPE_CHECKING` blocks
included: a lazy import is still a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "ga"

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("errors", ("ga.errors", "ga.labels")),
    ("section and io", ("ga.section", "ga.io", "ga.resources", "ga.layout")),
    (
        "model",
        (
            "ga",
            "ga.config",
            "ga.base",
            "ga.normalize",
            "ga.generator",
            "ga.state",
            "ga.model",
            "ga.export",
            "ga.smollm2",
            "ga.tiny",
        ),
    ),
    ("data", ("ga.data", "ga.format")),
    ("train", ("ga.train",)),
    ("eval", ("ga.eval",)),
    ("run config", ("ga.run_config",)),
    ("report and app", ("ga.report", "ga.app", "ga.ablation", "ga.testing")),
    ("stages", ("ga.stages", "ga.launch")),
    ("cli", ("ga.cli",)),
)
"""Lowest first; a module belongs to the layer of the longest prefix that names it or a package above it (`ga`
itself, the package's lazy exports of the model, only by its exact name). Kept in step with docs/design.md#layers."""


def layer_of(module: str) -> int | None:
    """The index in LAYERS of `module`'s layer; None when no prefix names it."""
    best: tuple[int, int] | None = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or (prefix != "ga" and module.startswith(prefix + ".")):
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), index)
    return None if best is None else best[1]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def ga_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(source: str, module: str, is_package: bool, known: set[str]) -> list[tuple[int, str]]:
    """(line, module) of every `ga` module that `source` (module `module`) imports, at any depth of the code; `from
    pkg import name` counts as importing `pkg.name` where that is a module."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, one level up per extra dot
                package = module.split(".") if is_package else module.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                target = f"{base}.{alias.name}"
                found.append((node.lineno, target if target in known else base))
    return [(line, name) for line, name in found if name == "ga" or name.startswith("ga.")]


def upward_imports(path: Path, module: str, source: str, known: set[str]) -> list[str]:
    """One line per import of `source` from a layer above `module`'s, naming the file, line and both layers."""
    own = layer_of(module)
    problems = []
    for line, target in imported_modules(source, module, path.name == "__init__.py", known):
        layer = layer_of(target)
        if own is not None and layer is not None and layer > own:
            problems.append(
                f"{path.relative_to(REPO)}:{line}: {module} ({LAYERS[own][0]}) imports {target} ({LAYERS[layer][0]})"
            )
    return problems


def test_every_module_has_a_layer():
    assert [module for module in ga_modules() if layer_of(module) is None] == []


def test_no_module_imports_from_a_higher_layer():
    modules = ga_modules()
    known = set(modules)
    problems = [
        problem for module, path in modules.items() for problem in upward_imports(path, module, path.read_text(), known)
    ]
    assert problems == [], "imports against the layer order (docs/design.md#layers):\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "source,expected",
    [
        ("import os\nfrom ga.io import read_json\n", []),
        (
            "def f():\n    from ga.train.loop import train\n",
            ["ga/data/example.py:2: ga.data.example (data) imports ga.train.loop (train)"],
        ),
        ("from ga import stages\n", ["ga/data/example.py:1: ga.data.example (data) imports ga.stages (stages)"]),
        (
            "from ..eval import metrics\n",
            ["ga/data/example.py:1: ga.data.example (data) imports ga.eval.metrics (eval)"],
        ),
    ],
    ids=["downward", "inside_a_function", "submodule_by_name", "relative"],
)
def test_an_upward_import_is_named_with_its_file_and_line(source, expected):
    known = set(ga_modules())
    assert upward_imports(PACKAGE / "data" / "example.py", "ga.data.example", source, known) == expected
