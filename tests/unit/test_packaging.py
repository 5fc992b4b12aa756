"""The wheel must carry every package and everything the local mesh spawns (non-editable installs), and
the top-level folders that install inside ``harness`` (``cases/``, ``fixtures/``, ``sample_apps/``)
must be reachable under that name only.

In this checkout ``pythonpath = ["."]`` (for ``tests.*`` builders) makes ``import fixtures`` or
``import sample_apps`` work too, which would load a second copy of a module under another name, and a
top-level ``fixtures`` would shadow the PyPI package of that name; nothing may rely on it, and the
wheel must not ship it.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
MAPPED = SETUPTOOLS["package-dir"]
"""Installed package -> top-level folder: ``{"harness.bundled_cases": "cases", ...}``."""
MAPPED_NAMES = set(MAPPED.values())
CODE = [ROOT / "conftest.py", *(p for top in ("harness", "tests", "bench", *sorted(MAPPED_NAMES))
                                 for p in (ROOT / top).rglob("*.py"))]
"""Every Python file of the repository."""


def _packages(folder: Path, name: str) -> set[str]:
    return {".".join([name, *p.parent.relative_to(folder).parts]) for p in folder.rglob("__init__.py")}


def test_pyproject_lists_every_harness_package() -> None:
    listed = set(SETUPTOOLS["packages"])
    on_disk = _packages(ROOT / "harness", "harness")
    for package, folder in MAPPED.items():
        on_disk |= _packages(ROOT / folder, package)
    missing = sorted(on_disk - listed)
    assert not missing, f"add these packages to [tool.setuptools] packages in pyproject.toml: {missing}"
    assert {"harness.bundled_cases": "cases", "harness.fixtures": "fixtures",
            "harness.sample_apps": "sample_apps"} == MAPPED


def test_bundled_cases_resolve_to_the_cases_directory() -> None:
    from harness.cases_discovery import bundled_cases_dir, case_files

    files = case_files([bundled_cases_dir()])
    names = {f.name for f in files}
    assert "canary.yaml" in names
    assert not any(f.parent.name == "manifests" for f in files), "manifests must not be collected as cases"


def test_mapped_folders_are_imported_by_their_installed_names_only() -> None:
    """``from harness.sample_apps.echo import fields``, never ``from sample_apps.echo import fields``."""
    wrong = []
    for path in CODE:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            wrong += [f"{path.relative_to(ROOT)}:{node.lineno}: {name}" for name in names
                      if name.split(".")[0] in MAPPED_NAMES]
    assert not wrong, "import these as harness.<package> (the installed name):\n" + "\n".join(wrong)


def test_mapped_packages_resolve_to_the_top_level_folders() -> None:
    import harness.fixtures
    import harness.sample_apps.echo

    assert Path(harness.sample_apps.echo.__file__).parent == ROOT / "sample_apps" / "echo"
    assert Path(harness.fixtures.__file__).parent == ROOT / "fixtures"


def test_wheel_ships_harness_alone_and_installs_the_mapped_packages_under_it(tmp_path: Path) -> None:
    """Build the wheel from a copy of the sources (the checkout stays untouched), install it into a bare
    directory and import from there, from a directory outside the repository."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("harness", *MAPPED_NAMES):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "--quiet"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(tmp_path / "dist"),
                    str(source)], check=True, capture_output=True, timeout=240)
    wheel, = (tmp_path / "dist").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"harness", wheel.name.split("-py3")[0] + ".dist-info"}
    assert {"harness/sample_apps/echo/Dockerfile", "harness/sample_apps/echo/README.md", "harness/locust/Dockerfile",
            "harness/fixtures/__init__.py", "harness/bundled_cases/canary.yaml"} <= set(names)
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=240)
    script = (
        "import importlib.util, json\n"
        "import harness.fixtures, harness.sample_apps.echo\n"
        "print(json.dumps({'echo': harness.sample_apps.echo.__file__, 'fixtures': harness.fixtures.__file__,\n"
        "    'top': {n: getattr(importlib.util.find_spec(n), 'origin', None) for n in ('fixtures', 'sample_apps')}}))\n"
    )
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    done = subprocess.run([sys.executable, "-c", script], cwd=outside, env={"PYTHONPATH": str(site), "PATH": ""},
                          check=True, capture_output=True, text=True, timeout=120)
    found = json.loads(done.stdout)
    assert found["echo"] == str(site / "harness" / "sample_apps" / "echo" / "__init__.py")
    assert found["fixtures"] == str(site / "harness" / "fixtures" / "__init__.py")
    ours = [str(site), str(ROOT)]
    assert not [origin for origin in found["top"].values() if origin and origin.startswith(tuple(ours))], found["top"]
