"""The embedded default corpus: text that exists offline on any machine with Python, plus fictional entities.

- `python_docs`: the standard library's own documentation prose: the pydoc topic pages of the language reference
  (`pydoc_data.topics`) and the module docstrings of the standard library's top-level modules, read with `ast`
  (nothing is imported, so no module side effects). Which text this is depends on the Python version; the
  documents stage's manifest records content hashes.
- `fictional_entities`: encyclopedic passages about generated entities (`ga.data.entities`).
"""

from __future__ import annotations

import ast
import json
import sysconfig
from pathlib import Path

from ga.data import entities as entity_gen

PYTHON_DOCS_SOURCE = "python_docs"


def python_docs() -> list[dict]:
    """Raw documents (common schema) from the standard library's documentation text, sorted by doc_id."""
    try:
        from pydoc_data.topics import topics
    except ImportError as err:  # some distributions strip it; say what is missing instead of silently shrinking
        raise RuntimeError(
            "the embedded corpus needs the standard library's pydoc_data package "
            "(install your distribution's full python3 stdlib)"
        ) from err
    docs = [
        {
            "doc_id": f"{PYTHON_DOCS_SOURCE}/topic/{name}",
            "source": PYTHON_DOCS_SOURCE,
            "text": text.strip(),
            "metadata": json.dumps({"kind": "pydoc_topic", "name": name}),
        }
        for name, text in topics.items()
        if text.strip()
    ]
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.glob("*.py")):
        try:
            docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue  # not every stdlib file parses under this interpreter (e.g. lib2to3 test data)
        if docstring and docstring.strip():
            docs.append(
                {
                    "doc_id": f"{PYTHON_DOCS_SOURCE}/module/{path.stem}",
                    "source": PYTHON_DOCS_SOURCE,
                    "text": docstring.strip(),
                    "metadata": json.dumps({"kind": "module_docstring", "name": path.stem}),
                }
            )
    return sorted(docs, key=lambda d: d["doc_id"])


def fictional_entity_docs(count: int, passages_per_entity: int, seed: int) -> list[dict]:
    return entity_gen.entity_documents(entity_gen.generate_entities(count, seed), passages_per_entity, seed)
