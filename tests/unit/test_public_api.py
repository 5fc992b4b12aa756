"""``harness``'s public names: each resolves to its home's object, the type checker sees the same list,
and ``import harness`` alone stays light (every echo app process and the echo image import it)."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import harness

INIT = Path(harness.__file__)


def test_every_public_name_is_its_home_modules_object() -> None:
    for name in harness.__all__:
        home = harness._HOMES[name]
        expected = importlib.import_module(f"harness.{name}") if home == "harness" else getattr(
            importlib.import_module(home), name)
        assert getattr(harness, name) is expected, name


def test_all_lists_every_public_name_once() -> None:
    assert harness.__all__ == sorted(harness._HOMES)


def test_the_type_checkers_imports_name_the_same_homes() -> None:
    """The ``if TYPE_CHECKING:`` block and ``_HOMES`` list the same names from the same modules."""
    tree = ast.parse(INIT.read_text())
    block = next(node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING")
    seen = {alias.asname or alias.name: node.module for node in block.body if isinstance(node, ast.ImportFrom)
            for alias in node.names}
    assert seen == harness._HOMES


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'run_everything'"):
        harness.run_everything  # noqa: B018


def test_import_harness_loads_none_of_the_heavy_libraries() -> None:
    code = "import sys, harness; print(sorted(m for m in ('pydantic', 'scipy', 'httpx', 'harness.case') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"
