"""The pytest plugin (entry point ``pytest11``): case YAML collected as tests, plus mesh fixtures.

Installing mesh-harness gives any repository:

* collection of case files in ``cases/`` directories: one item per check, ids
  ``cases/canary.yaml::canary-90-10::split follows the weights``; a case's config is applied once
  before its first check and reverted after its last (the ``CaseNode`` collector's setup/teardown);
* fixtures ``mesh`` (session scope, started on first use), ``mesh_settings``, ``apply_config``
  (apply Istio objects for one test, reverted after it) and ``send`` (one ForwardEcho batch), from
  ``harness.fixtures`` (entry point ``mesh_harness_fixtures``), on the session mesh kept here;
* the options of ``mesh-harness run`` (``harness.session.OPTIONS``: ``--mesh local|kind|cluster`` with the
  kube options, ``--control-plane builtin|istiod``, ``--envoy-binary``, ``--istio-version``, ``--alpha``,
  ``--delta``, ``--power``, ``--max-requests``, ``--mesh-attach NAME``), plus ``--mesh-json FILE`` (the
  result document of the collected cases).

Cases are pre-flighted at collection as ``run`` does them (``harness.session.preflight``): errors are
collection errors, warnings are listed in the terminal summary. Failures show the numbers: each
expectation's n, observed vs expected fractions, interval and rule.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from harness.applied import applied
from harness.case import Case, Check, load_case_file
from harness.cases_discovery import CASE_SUFFIXES, looks_like_case
from harness.errors import CaseError, HarnessError, Issue
from harness.interrupts import sigterm_as_interrupt
from harness.mesh.base import Mesh, MeshInfo, SyncToken, describe_istio
from harness.report.forensics import forensics_lines
from harness.report.table import interval_text, observed_vs_expected
from harness.result import CheckResult, RunResult, write_result
from harness.runner import run_check
from harness.session import add_pytest_options, enforce, from_pytest, open_mesh, preflight, stat_settings

_SESSION = pytest.StashKey["MeshSession"]()
_PREVIOUS_SIGTERM = pytest.StashKey[Any]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mesh-harness")
    add_pytest_options(group)
    group.addoption("--mesh-json", default=None, metavar="FILE", help="write the cases' result document here")


class MeshHookSpecs:
    """Hooks a ``conftest.py`` or another plugin can implement."""

    @pytest.hookspec(firstresult=True)
    def pytest_mesh_harness_make_mesh(self, config: pytest.Config) -> Mesh | None:
        """Return a started mesh for this session instead of the local mesh (a fake mesh in the
        harness's own tests, a cluster mesh elsewhere). The plugin closes it when pytest exits."""


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(MeshHookSpecs)


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_SESSION] = MeshSession(config)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so the mesh's processes and work dir are cleaned up.
        config.stash[_PREVIOUS_SIGTERM] = signal.signal(signal.SIGTERM, sigterm_as_interrupt)


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(_SESSION, None)
    if session is not None:
        session.close()
    previous = config.stash.get(_PREVIOUS_SIGTERM, None)
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """On real Istio, make the mesh and deploy the first case's topology before any test runs.

    pytest-timeout times a test's setup as well as its call (unless ``timeout_func_only``), and the
    first case's setup would otherwise make the mesh: create the kind cluster, install Istio, build
    and load the image, pull the proxy image for the first pods (minutes on a cold machine). Done
    here, no test's timeout counts them, and a failure is kept and reported by each case as before.
    The local mesh starts in seconds and stays lazy (a session without cases starts none)."""
    if session.config.getoption("--mesh") == "local" or session.config.option.collectonly:
        return
    if getattr(session.config.option, "dist", "no") != "no" and not hasattr(session.config, "workerinput"):
        return  # pytest-xdist's controller runs no test: each worker makes its own mesh
    first = next((item.parent for item in session.items if isinstance(item, CheckItem)), None)
    if not isinstance(first, CaseNode):
        return
    try:
        session.config.stash[_SESSION].mesh().deploy(first.case.topology)
    except HarnessError:
        return  # kept by MeshSession.mesh() or raised again by the case's own deploy, with the message


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix in CASE_SUFFIXES and "cases" in file_path.parts and looks_like_case(file_path):
        return CaseFile.from_parent(parent, path=file_path)
    return None


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    session = config.stash[_SESSION]
    if session.results:
        passed = sum(r.outcome == "pass" for r in session.results)
        info = session.mesh_info()
        where = f" on the {info.kind} mesh (Envoy {info.envoy_version}, {describe_istio(info.istio_version)})" if info else ""
        terminalreporter.write_line(f"mesh-harness: {passed}/{len(session.results)} checks passed{where}, "
                                    f"{sum(r.requests for r in session.results)} requests")
    if config.getoption("--mesh-json"):
        info = session.mesh_info()
        run = RunResult(info, session.settings, time.monotonic() - session.started, tuple(session.results))
        write_result(config.getoption("--mesh-json"), run)
    if session.warnings:
        # a section, not Python warnings: pyproject's filterwarnings=error would turn those into failures
        terminalreporter.write_sep("=", "mesh-harness warnings")
        for warning in session.warnings:
            terminalreporter.write_line(f"warning: {warning}")


class MeshSession:
    """The session's mesh, started on first use and closed when pytest exits (also on Ctrl-C)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.options = from_pytest(config)
        self.settings = stat_settings(self.options)
        self.results: list[CheckResult] = []
        self.warnings: list[Issue] = []
        """Pre-flight warnings of the collected cases, for the terminal summary."""
        self.started = time.monotonic()
        self._mesh: Mesh | None = None
        self._failed: HarnessError | None = None
        self._open = ExitStack()

    def mesh(self) -> Mesh:
        """The mesh, made on first use; a mesh that could not be made is not tried again (a kind cluster
        that failed to start would otherwise be retried, minutes each, for every case)."""
        if self._failed is not None:
            raise self._failed
        if self._mesh is None:
            try:
                made: Mesh | None = self.config.hook.pytest_mesh_harness_make_mesh(config=self.config)
                if made is None:
                    made = self._open.enter_context(open_mesh(self.options))
                else:
                    self._open.callback(made.close)
            except HarnessError as exc:
                self._failed = exc
                raise
            self._mesh = made
        return self._mesh

    def mesh_info(self) -> MeshInfo | None:
        return self._mesh.info() if self._mesh is not None else None

    def close(self) -> None:
        self._mesh = None
        self._open.close()


class CaseFile(pytest.File):
    """A YAML file of cases; invalid input is a collection error with every issue, no traceback."""

    def collect(self) -> Iterator[pytest.Collector]:
        cases = load_case_file(_shown(self.path))
        session = self.config.stash[_SESSION]
        enforce(preflight(cases, session.options.capabilities), session.warnings.append)
        for case in cases:
            yield CaseNode.from_parent(self, name=case.name, case=case)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CaseError):
            return f"invalid case file:\n{excinfo.value}"
        return super().repr_failure(excinfo)


class CaseNode(pytest.Collector):
    """One case: deploys its topology and applies its config before the first check, reverts after the last.

    A mesh error while setting up is kept and raised by each check instead: pytest prints errors
    raised in setup with a traceback, and a case author should see only the harness's message.
    """

    def __init__(self, *, case: Case, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.token: SyncToken | None = None
        self.setup_error: HarnessError | None = None
        self._config = ExitStack()
        """The case's ``applied`` config: entered by ``setup``, left by ``teardown`` (pytest calls them apart)."""

    def collect(self) -> Iterator[pytest.Item]:
        for check in self.case.checks:
            yield CheckItem.from_parent(self, name=check.name, check=check)

    def setup(self) -> None:
        try:
            self.token = self._config.enter_context(applied(self.config.stash[_SESSION].mesh(), self.case))
        except HarnessError as exc:
            self.setup_error = exc

    def teardown(self) -> None:
        self.token = None
        self._config.close()

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        return _harness_error_text(excinfo) or super().repr_failure(excinfo)


def _shown(path: Path) -> Path:
    """``path`` relative to the working directory when it is below it, so messages read ``cases/x.yaml:4``."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


class CheckFailed(Exception):
    """Raised by a CheckItem whose verdict is not pass; carries the result for the report."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__(result.outcome)
        self.result = result


class CheckItem(pytest.Item):
    """One check of a case, judged from live traffic."""

    def __init__(self, *, check: Check, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check

    def runtest(self) -> None:
        node = self.parent
        assert isinstance(node, CaseNode)
        if node.setup_error is not None:
            raise node.setup_error
        assert node.token is not None
        session = self.config.stash[_SESSION]
        result = run_check(session.mesh(), node.case, self.check, session.settings, node.token.version)
        session.results.append(result)
        if result.outcome != "pass":
            raise CheckFailed(result)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.check.line - 1, f"{self.parent.name if self.parent else ''}::{self.name}"

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CheckFailed):
            return describe_result(excinfo.value.result)
        return _harness_error_text(excinfo) or super().repr_failure(excinfo)


def describe_result(r: CheckResult) -> str:
    """A failed check in words and numbers, as printed by pytest."""
    lines = [f'{r.file}:{r.line}: check "{r.check}" of case {r.case}: {r.outcome}']
    if r.error:
        lines.append(f"  {r.error}")
    if r.verdict is not None:
        for e in r.verdict.evidence:
            lines.append(f"  {e.expectation}: {e.outcome} after {e.n} requests")
            lines.append(f"    observed (expected): {observed_vs_expected(e)}")
            if e.intervals:
                lines.append(f"    {interval_text(e)}")
            lines.append(f"    rule: {e.rule}")
            if e.counterexample:
                c = e.counterexample
                lines.append(f"    first counterexample: request #{c.index} (x-request-id {c.request_id}) got {c.got}"
                             + (f", error {c.error}" if c.error else ""))
    if r.stale:
        lines.append(f"  {r.stale} responses from an older config version were not counted")
    if r.forensics is not None:
        lines += [f"  {line}" for line in forensics_lines(r.forensics)]
    return "\n".join(lines)


def _harness_error_text(excinfo: pytest.ExceptionInfo[BaseException]) -> str | None:
    if isinstance(excinfo.value, CaseError):
        return f"invalid case:\n{excinfo.value}"
    if isinstance(excinfo.value, HarnessError):
        return f"{type(excinfo.value).__name__}: {excinfo.value}"
    return None


def mesh_session(config: pytest.Config) -> MeshSession:
    """The session's ``MeshSession``: for the fixtures of ``harness.fixtures``, a plugin of its own."""
    return config.stash[_SESSION]
