"""Every input of the bad-input corpus through the real CLI: exit code 2, the pinned issues on stderr,
no traceback, and no mesh made (so nothing applied); the warnings corpus validates (0) and runs.

In-process through ``main(..., mesh_factory=...)`` for every file; a few as real subprocesses, the
honest proof that no traceback reaches a user's terminal.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.cli import EXIT_INVALID, EXIT_OK, main
from harness.mesh.fake import FakeMesh, draw
from harness.session import MeshOptions
from tests.errors.corpus_expected import (
    CORPUS,
    EXPECTED,
    EXPECTED_WARNINGS,
    WARNINGS,
    assert_issues,
    corpus_files,
)

INPUTS = corpus_files(CORPUS)
SUBPROCESS_INPUTS = [("file_binary.yaml", "run"), ("yaml_tab_indented.yaml", "validate"),
                     ("istio_misspelt_mirror_percentage.yaml", "run")]
"""A few, for time: a subprocess costs about half a second (run refuses bad input before it imports scipy)."""
HEADER = "invalid input (nothing was applied)"


def test_corpus_every_file_has_an_expectation_and_every_expectation_a_file() -> None:
    assert INPUTS == sorted(EXPECTED)
    assert corpus_files(WARNINGS) == sorted(EXPECTED_WARNINGS)
    assert len(INPUTS) >= 60


@pytest.fixture
def made() -> list[FakeMesh]:
    return []


@pytest.fixture
def factory(made: list[FakeMesh]) -> Callable[[MeshOptions], FakeMesh]:
    """A mesh factory that records every mesh it makes: an invalid input must make none."""

    def make(options: MeshOptions) -> FakeMesh:
        mesh = FakeMesh(draw(), seed=3)
        made.append(mesh)
        return mesh

    return make


@pytest.fixture
def in_corpus(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Files are named relative to their directory, as a user in it would name them."""
    monkeypatch.chdir(CORPUS)
    yield CORPUS


def issue_lines(err: str) -> list[str]:
    lines = err.splitlines()
    assert lines[:1] == [HEADER], err
    return lines[1:]


@pytest.mark.usefixtures("in_corpus")
@pytest.mark.parametrize("name", INPUTS)
def test_corpus_run_exits_2_with_the_message_and_makes_no_mesh(
    name: str, factory: Callable[[MeshOptions], FakeMesh], made: list[FakeMesh], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", name], mesh_factory=factory) == EXIT_INVALID
    printed = capsys.readouterr()
    assert made == []
    assert_issues(issue_lines(printed.err), name, EXPECTED[name], printed.out + printed.err)


@pytest.mark.usefixtures("in_corpus")
@pytest.mark.parametrize("name", INPUTS)
def test_corpus_validate_exits_2_with_the_message(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", name]) == EXIT_INVALID
    printed = capsys.readouterr()
    assert_issues(issue_lines(printed.err), name, EXPECTED[name], printed.out + printed.err)


@pytest.mark.parametrize(("name", "command"), SUBPROCESS_INPUTS)
def test_corpus_real_process_exits_2_without_a_traceback(name: str, command: str) -> None:
    done = subprocess.run([sys.executable, "-m", "harness.cli", command, name], cwd=CORPUS, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == EXIT_INVALID, done.stderr
    assert_issues(issue_lines(done.stderr), name, EXPECTED[name], done.stdout + done.stderr)


def test_corpus_a_manifest_named_as_a_case_is_one_clear_issue(
    in_corpus: Path, factory: Callable[[MeshOptions], FakeMesh], made: list[FakeMesh],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """pytest skips manifests (they are not cases), so this input is the CLI's alone."""
    assert main(["run", "manifests/reviews-virtual-service.yaml"], mesh_factory=factory) == EXIT_INVALID
    assert made == []
    assert issue_lines(capsys.readouterr().err) == [
        'manifests/reviews-virtual-service.yaml:1: this is a Kubernetes manifest ("VirtualService"), not a case; '
        "name a case file, and reference the manifest from its config: [{file: reviews-virtual-service.yaml}]"
    ]


def test_corpus_a_directory_without_cases_is_refused_before_any_mesh(
    tmp_path: Path, factory: Callable[[MeshOptions], FakeMesh], made: list[FakeMesh],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", str(tmp_path)], mesh_factory=factory) == EXIT_INVALID
    assert made == []
    assert issue_lines(capsys.readouterr().err) == [
        f"{tmp_path}: no case files (*.yaml, *.yml) found; name case files or directories holding them"
    ]


def test_corpus_a_missing_path_is_refused(factory: Callable[[MeshOptions], FakeMesh], made: list[FakeMesh],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "no/such/case.yaml"], mesh_factory=factory) == EXIT_INVALID
    assert made == []
    assert issue_lines(capsys.readouterr().err) == [
        "no/such/case.yaml: no such file or directory; name case files or directories holding them"
    ]


# --- warnings: accepted by istiod, so validate passes and run goes ahead -----------------------------

WARNING_INPUTS = corpus_files(WARNINGS)


def warning_lines(out: str) -> list[str]:
    return [line.removeprefix("warning: ") for line in out.splitlines() if line.startswith("warning: ")]


@pytest.mark.parametrize("name", WARNING_INPUTS)
def test_corpus_warning_validate_exits_0_and_prints_it(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(WARNINGS)
    assert main(["validate", name]) == EXIT_OK
    printed = capsys.readouterr()
    assert printed.err == ""
    assert_issues(warning_lines(printed.out), name, EXPECTED_WARNINGS[name], printed.out)


@pytest.mark.parametrize("name", WARNING_INPUTS)
def test_corpus_warning_run_goes_ahead(
    name: str, monkeypatch: pytest.MonkeyPatch, factory: Callable[[MeshOptions], FakeMesh],
    made: list[FakeMesh], capsys: pytest.CaptureFixture[str],
) -> None:
    # Every check here expects status 200 from every response, and the fake mesh answers 200: no statistics.
    monkeypatch.chdir(WARNINGS)
    assert main(["run", name], mesh_factory=factory) == EXIT_OK
    printed = capsys.readouterr()
    assert len(made) == 1 and made[0].applied, "the case's config was applied"
    assert_issues(warning_lines(printed.out), name, EXPECTED_WARNINGS[name], printed.out)
