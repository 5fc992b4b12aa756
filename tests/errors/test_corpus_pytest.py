"""Every input of the bad-input corpus through the pytest plugin: a collection error with the pinned
issues and no traceback, no test run, and no mesh made.

One real pytest process collects the whole corpus (a subprocess: the honest "no traceback" proof,
and one process instead of a hundred); each file's error section is then checked on its own. The
plugin's mesh is lazy (``MeshSession.mesh()`` runs on a case's first setup or the ``mesh`` fixture);
the inner conftest records every mesh the plugin asks for, and a valid case shows that the record
works, so "no mesh made" is not vacuous. The warnings corpus collects without errors, and each file's
warnings are listed in the terminal summary as ``run`` prints them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.errors.corpus_expected import (
    CORPUS,
    EXPECTED,
    EXPECTED_WARNINGS,
    WARNINGS,
    assert_issues,
    corpus_files,
)

pytest_plugins = ["pytester"]

RECORDING_CONFTEST = """
from pathlib import Path
from harness.mesh.fake import FakeMesh, draw

def pytest_mesh_harness_make_mesh(config):
    Path(config.rootpath, "mesh-made").write_text("yes")
    return FakeMesh(draw(), seed=7)
"""
# Other installed plugins are kept out of the inner runs (see tests/unit/front/test_front_pytest_plugin.py).
QUIET = ("-p", "no:hypothesispytest", "-p", "no:anyio", "-p", "no:cacheprovider")
VALID = 'name: ok\nchecks:\n  - name: c\n    send: {url: "http://reviews:9080/"}\n    expect: {status: 200}\n'
INPUTS = corpus_files(CORPUS)
_SECTION = re.compile(r"^_+ ERROR collecting (\S+) _+$")


def make_project(root: Path) -> Path:
    """An inner project: the recording conftest, a pytest.ini that pins the rootdir, the corpus's manifests."""
    (root / "conftest.py").write_text(RECORDING_CONFTEST)
    (root / "pytest.ini").write_text("[pytest]\n")
    shutil.copytree(CORPUS / "manifests", root / "cases" / "manifests")
    return root


@dataclass(frozen=True)
class Session:
    returncode: int
    output: str
    sections: dict[str, list[str]]
    mesh_made: bool


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    """One real pytest process over every corpus file; its error sections by file."""
    root = make_project(tmp_path_factory.mktemp("corpus"))
    for name in INPUTS:
        shutil.copy(CORPUS / name, root / "cases" / name)
    done = subprocess.run([sys.executable, "-m", "pytest", *QUIET, "cases"], cwd=root, capture_output=True, text=True,
                          timeout=120, check=False)
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for line in done.stdout.splitlines():
        if match := _SECTION.match(line):
            current = sections.setdefault(match.group(1), [])
        elif line.startswith("="):
            current = []
        else:
            current.append(line)
    return Session(done.returncode, done.stdout + done.stderr, sections, (root / "mesh-made").exists())


def test_corpus_pytest_reports_every_file_runs_nothing_and_makes_no_mesh(session: Session) -> None:
    assert session.returncode == pytest.ExitCode.INTERRUPTED, session.output
    assert sorted(session.sections) == [f"cases/{name}" for name in INPUTS]
    assert f"Interrupted: {len(INPUTS)} errors during collection" in session.output
    assert "Traceback" not in session.output
    assert not session.mesh_made


@pytest.mark.parametrize("name", INPUTS)
def test_corpus_is_a_collection_error_with_the_message(session: Session, name: str) -> None:
    section = session.sections[f"cases/{name}"]
    assert section[:1] == ["invalid case file:"], section
    assert_issues([line for line in section[1:] if line], name, EXPECTED[name], "\n".join(section))


@pytest.fixture
def cases_dir(pytester: pytest.Pytester) -> pytest.Pytester:
    make_project(pytester.path)
    return pytester


def test_corpus_the_mesh_record_sees_a_valid_case(cases_dir: pytest.Pytester) -> None:
    """The control: a valid case next to a broken one runs (with --continue-on-collection-errors) and makes the mesh."""
    (cases_dir.path / "cases" / "ok.yaml").write_text(VALID)
    shutil.copy(CORPUS / "yaml_invalid.yaml", cases_dir.path / "cases" / "yaml_invalid.yaml")
    result = cases_dir.runpytest(*QUIET, "--continue-on-collection-errors")
    result.assert_outcomes(passed=1, errors=1)
    assert (cases_dir.path / "mesh-made").exists()


def test_corpus_warnings_are_collected_without_errors_and_listed_as_run_prints_them(cases_dir: pytest.Pytester) -> None:
    names = corpus_files(WARNINGS)
    for name in names:
        shutil.copy(WARNINGS / name, cases_dir.path / "cases" / name)
    result = cases_dir.runpytest(*QUIET, "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert sorted(line.split("::")[0] for line in result.outlines if "::" in line) == [f"cases/{n}" for n in names]
    warnings = [line.removeprefix("warning: cases/") for line in result.outlines if line.startswith("warning: ")]
    for name in names:
        assert_issues([w for w in warnings if w.startswith(f"{name}:")], name, EXPECTED_WARNINGS[name], result.stdout.str())
