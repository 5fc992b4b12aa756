"""The mesh layer stands on its own: ``harness/mesh/`` imports nothing from the layers above it
(the environment daemon, load runs, reports), and the kube backend borrows nothing from the local one;
what both backends share (the access-log join, the echo app's client) lives in ``harness/mesh/`` itself.

An AST scan of every import, lazy ones inside functions included; no module is imported.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

RULES = [
    # (modules scanned, forbidden import prefixes)
    ("harness/mesh", ("harness.env", "harness.load", "harness.report")),
    ("harness/mesh/kube", ("harness.mesh.local",)),
]


def imports(source: str, package: str) -> Iterator[tuple[int, str]]:
    """(line, module) of every import in ``source``, a module of ``package``; relative ones resolved."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            yield node.lineno, module
            if node.module is None:  # ``from . import x``: x may be a module
                yield from ((node.lineno, f"{module}.{alias.name}") for alias in node.names)


def _forbidden(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize(("folder", "prefixes"), RULES, ids=[r[0] for r in RULES])
def test_mesh_imports_stay_below_the_mesh(folder: str, prefixes: tuple[str, ...]) -> None:
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        package = ".".join(path.relative_to(ROOT).parts[:-1])
        found += [f"{path.relative_to(ROOT)}:{line}: imports {module}"
                  for line, module in imports(path.read_text(), package) if _forbidden(module, prefixes)]
    assert not found, f"{folder} must not import {', '.join(prefixes)}:\n" + "\n".join(found)


def test_mesh_imports_scan_sees_lazy_and_relative_imports() -> None:
    source = '''
import harness.report.table
from harness.mesh.base import Mesh


def lazy():
    from harness.env.state import EnvState
    from ..local import apps
    from . import accesslog
'''
    assert list(imports(source, "harness.mesh.kube")) == [
        (2, "harness.report.table"), (3, "harness.mesh.base"), (7, "harness.env.state"), (8, "harness.mesh.local"),
        (9, "harness.mesh.kube"), (9, "harness.mesh.kube.accesslog")]
    assert _forbidden("harness.env.state", ("harness.env",)) and not _forbidden("harness.envoy", ("harness.env",))
