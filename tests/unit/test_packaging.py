"""The wheel must carry every package and everything the local mesh spawns (non-editable installs)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_pyproject_lists_every_harness_package() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "harness").rglob("__init__.py")
    }
    missing = sorted(on_disk - listed)
    assert not missing, f"add these packages to [tool.setuptools] packages in pyproject.toml: {missing}"
    assert "harness.bundled_cases" in listed


def test_bundled_cases_resolve_to_the_cases_directory() -> None:
    from harness.cases_discovery import bundled_cases_dir, case_files

    files = case_files([bundled_cases_dir()])
    names = {f.name for f in files}
    assert "canary.yaml" in names
    assert not any(f.parent.name == "manifests" for f in files), "manifests must not be collected as cases"
