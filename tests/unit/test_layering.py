"""Nothing imports upward: each rule names a module or folder and the layers it must not reach.

* the mesh layer stands on its own: ``harness/mesh/`` imports nothing from the environment daemon,
  load runs, reports, or the runner and front ends above it; the kube backend borrows nothing from the
  local one (what both share, the access-log join and the echo app's client, lives in ``harness/mesh/``);
* the runner writes results and the reports read them: neither the runner nor the result records
  reach into ``report/``; load's judging does not reach into the interactive environment;
* the case model does not import the Locust package (its ``load:`` schema is ``harness/loadspec.py``);
* the pure layers (statistics, the Istio model) import no case; the echo app imports only itself
  (its container image holds nothing else).

An AST scan of every import, lazy ones inside functions included; no module is imported.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: The mesh may read a ``Case`` (the capability table and the kube dry-run plan judge whole cases), but never
#: what runs, reports or serves them.
ABOVE_THE_MESH = ("harness.env", "harness.locust", "harness.report", "harness.runner", "harness.session",
                  "harness.cli", "harness.pytest_plugin", "harness.fixtures")
RULES = [
    # (module or folder scanned, as installed, forbidden import prefixes)
    ("harness/mesh", "harness.mesh", ABOVE_THE_MESH),
    ("harness/mesh/kube", "harness.mesh.kube", ("harness.mesh.local",)),
    ("harness/runner.py", "harness", ("harness.report",)),
    ("harness/result.py", "harness", ("harness.report", "harness.runner", "harness.verdict")),
    ("harness/locust/thresholds.py", "harness.locust", ("harness.env",)),
    ("harness/case.py", "harness", ("harness.locust",)),
    ("harness/stats", "harness.stats", ("harness.case", "harness.mesh")),
    ("harness/istio", "harness.istio", ("harness.case",)),
    ("sample_apps", "harness.sample_apps", ("harness.",)),
]


def sources(where: str, package: str) -> Iterator[tuple[Path, str]]:
    """Each file under ``where`` (a folder or one file) with the package it is installed in."""
    root = ROOT / where
    assert root.exists(), f"{where}: no such module or folder (a rule over nothing would pass)"
    if root.is_file():
        yield root, package
        return
    for path in sorted(root.rglob("*.py")):
        yield path, ".".join([package, *path.relative_to(root).parts[:-1]])


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


def _forbidden(module: str, prefixes: tuple[str, ...], own: str) -> bool:
    """Whether ``module`` falls under a prefix; ``harness.`` (a trailing dot) means all of harness but ``own``."""
    def under(prefix: str) -> bool:
        return module == prefix or module.startswith(prefix + ".")
    return any(under(p) if not p.endswith(".") else module.startswith(p) and not under(own) for p in prefixes)


def violations(where: str, package: str, prefixes: tuple[str, ...]) -> list[str]:
    return [f"{path.relative_to(ROOT)}:{line}: imports {module}"
            for path, inside in sources(where, package)
            for line, module in imports(path.read_text(), inside) if _forbidden(module, prefixes, package)]


@pytest.mark.parametrize(("where", "package", "prefixes"), RULES, ids=[r[0] for r in RULES])
def test_nothing_imports_upward(where: str, package: str, prefixes: tuple[str, ...]) -> None:
    found = violations(where, package, prefixes)
    assert not found, f"{where} must not import {', '.join(prefixes)}:\n" + "\n".join(found)


def test_the_rules_catch_what_they_name() -> None:
    """A rule over a file or a folder reports a forbidden import; the echo app's own imports pass its rule."""
    assert violations("harness/cli.py", "harness", ("harness.report",))  # the CLI renders reports
    assert violations("harness/mesh/local", "harness.mesh.local", ("harness.sample_apps",))
    assert _forbidden("harness.case", ("harness.",), "harness.sample_apps")
    assert not _forbidden("harness.sample_apps.echo.fields", ("harness.",), "harness.sample_apps")


def test_layering_scan_sees_lazy_and_relative_imports() -> None:
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
    assert _forbidden("harness.env.state", ("harness.env",), "harness.mesh")
    assert not _forbidden("harness.envoy", ("harness.env",), "harness.mesh")
