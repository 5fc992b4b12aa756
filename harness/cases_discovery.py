"""Finding case files: the paths a user names, or the cases bundled with the package.

A YAML file is a case file unless its first document is a Kubernetes manifest (``apiVersion`` and
``kind`` at the top), which cases reference with ``file:``. Both the CLI and the pytest plugin use
this one rule, so a file is a case in one exactly when it is a case in the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import yaml

from harness.errors import CaseSyntaxError
from harness.yamlsource import compose_all

CASE_SUFFIXES = (".yaml", ".yml")


def bundled_cases_dir() -> Path:
    """The policy cases shipped inside the distribution (``cases/`` in the source tree)."""
    return Path(str(resources.files("harness.bundled_cases")))


def case_files(paths: Iterable[str | Path]) -> list[Path]:
    """Case files under ``paths`` (files or directories, searched recursively), sorted, without duplicates."""
    found: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for candidate in sorted(p for p in path.rglob("*") if p.suffix in CASE_SUFFIXES):
                if looks_like_case(candidate):
                    found[candidate] = None
        elif path.is_file():
            found[path] = None
        else:
            raise CaseSyntaxError(f"{path}: no such file or directory; name case files or directories holding them")
    return list(found)


def looks_like_case(path: Path) -> bool:
    """False for Kubernetes manifests (first document has apiVersion and kind); True otherwise, also for
    files too broken to tell, so that their errors are reported instead of being skipped."""
    try:
        first = next(iter(compose_all(path.read_text(encoding="utf-8"))), None)
    except (yaml.YAMLError, OSError, UnicodeDecodeError):
        return True
    keys = {k.value for k, _ in first.value if isinstance(k, yaml.ScalarNode)} if isinstance(first, yaml.MappingNode) else set()
    return not {"apiVersion", "kind"} <= keys
