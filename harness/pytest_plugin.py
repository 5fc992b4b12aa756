"""The pytest plugin (entry point ``pytest11``): case YAML collected as tests, plus mesh fixtures.

Installing mesh-harness gives any repository:

* collection of case files in ``cases/`` directories: one item per check, ids
  ``cases/canary.yaml::canary-90-10::split follows the weights``; a case's config is applied once
  before its first check and reverted after its last (the ``CaseNode`` collector's setup/teardown);
* fixtures ``mesh`` (session scope, started on first use), ``mesh_settings``, ``apply_config``
  (apply Istio objects for one test, reverted after it) and ``send`` (one ForwardEcho batch), from
  ``harness.fixtures`` (entry point ``mesh_harness_fixtures``), on the session mesh kept here;
* options ``--mesh local|kind|cluster`` (with ``--kubeconfig``, ``--context``, ``--istio-revision``,
  ``--keep-cluster``, ``--kubernetes-version``, ``--image-registry``), ``--control-plane builtin|istiod`` (``--istiod-binary``), ``--envoy-binary``,
  ``--istio-version``, ``--alpha``, ``--delta``, ``--power``,
  ``--max-requests``, ``--mesh-json FILE`` (the result document of the collected cases),
  ``--mesh-attach NAME`` (run on an environment started with ``mesh-harness up``; it keeps running).

Failures show the numbers: each expectation's n, observed vs expected fractions, interval and rule.
"""

from __future__ import annotations

import argparse
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.case import Case, Check, load_case_file
from harness.cases_discovery import CASE_SUFFIXES, looks_like_case
from harness.errors import CaseError, HarnessError, Issue, ValidationError
from harness.interrupts import sigterm_as_interrupt
from harness.mesh.base import CONTROL_PLANES, Mesh, MeshInfo, SyncToken, describe_istio
from harness.mesh.capabilities import MeshName, case_refusals, mesh_name
from harness.report.forensics import forensics_json, forensics_lines
from harness.report.result import result_document, write_result
from harness.report.table import interval_text, observed_vs_expected
from harness.runner import CheckResult, run_check
from harness.settings import StatSettings

_SESSION = pytest.StashKey["MeshSession"]()
_PREVIOUS_SIGTERM = pytest.StashKey[Any]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mesh-harness")
    group.addoption("--mesh", default="local", choices=["local", "kind", "cluster"],
                    help="mesh to run cases on: local (default), kind (real Istio on a kind cluster the harness makes), "
                         "cluster (real Istio on --context)")
    group.addoption("--envoy-binary", default=None, help="Envoy binary for the local mesh")
    group.addoption("--control-plane", default="builtin", choices=CONTROL_PLANES,
                    help="local mesh: builtin (the harness's translator) or istiod (real istiod, `mesh-harness istiod build`)")
    group.addoption("--istiod-binary", default=None, help="istiod (pilot-discovery) binary for --control-plane istiod")
    group.addoption("--istio-version", default=None,
                    help="local: Istio release to emulate (default 1.30); kind: Istio to install (default 1.30.3)")
    group.addoption("--kubeconfig", default=None, help="--mesh cluster: kubeconfig file")
    group.addoption("--context", default=None, help="--mesh cluster: kubeconfig context (required)")
    group.addoption("--istio-revision", default=None, help="Istio revision (canary control plane) for the sample pods")
    group.addoption("--keep-cluster", action="store_true", default=False, help="--mesh kind: keep the kind cluster")
    group.addoption("--kubernetes-version", default=None, metavar="MINOR",
                    help="--mesh kind: the Kubernetes minor of the kind node image (default 1.35)")
    group.addoption("--image-registry", default=None, help="--mesh cluster: registry to push the echo image to")
    d = StatSettings()
    group.addoption("--alpha", type=float, default=d.alpha, help="chance a correct mesh fails a check")
    group.addoption("--delta", type=float, default=d.delta, help="tolerance on each fraction")
    group.addoption("--power", type=float, default=d.power, help="chance a deviation of delta is caught")
    group.addoption("--max-requests", type=int, default=None, help="cap on requests per check")
    group.addoption("--mesh-attach", default=None, metavar="NAME",
                    help="run on the environment NAME started with `mesh-harness up` (left running, its config restored)")
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
        doc = result_document(session.results, info, session.settings, time.monotonic() - session.started)
        write_result(config.getoption("--mesh-json"), doc)


class MeshSession:
    """The session's mesh, started on first use and closed when pytest exits (also on Ctrl-C)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.settings = StatSettings(
            alpha=config.getoption("--alpha"), delta=config.getoption("--delta"),
            power=config.getoption("--power"), max_requests=config.getoption("--max-requests"),
        )
        self.results: list[CheckResult] = []
        self.started = time.monotonic()
        self._mesh: Mesh | None = None
        self._failed: HarnessError | None = None

    def mesh(self) -> Mesh:
        """The mesh, made on first use; a mesh that could not be made is not tried again (a kind cluster
        that failed to start would otherwise be retried, minutes each, for every case)."""
        if self._failed is not None:
            raise self._failed
        if self._mesh is None:
            try:
                made: Mesh | None = self.config.hook.pytest_mesh_harness_make_mesh(config=self.config)
                if made is None and self.config.getoption("--mesh-attach"):
                    made = self._attached_mesh()
                if made is None:
                    made = self._local_mesh() if self.config.getoption("--mesh") == "local" else self._kube_mesh()
            except HarnessError as exc:
                self._failed = exc
                raise
            self._mesh = made
        return self._mesh

    def _kube_mesh(self) -> Mesh:
        from harness.mesh.kube.session import KubeOptions, open_kube_mesh
        from harness.mesh.kube.versions import DEFAULT_KUBERNETES

        get = self.config.getoption
        return open_kube_mesh(KubeOptions(
            mesh=get("--mesh"), kubeconfig=get("--kubeconfig"), context=get("--context"),
            istio_version=get("--istio-version"), istio_revision=get("--istio-revision"),
            keep_cluster=get("--keep-cluster"), image_registry=get("--image-registry"),
            kubernetes=get("--kubernetes-version") or DEFAULT_KUBERNETES,
        ))

    def _attached_mesh(self) -> Mesh:
        from harness.env.remote import AttachedMesh, check_attach_options

        get = self.config.getoption
        check_attach_options(get("--mesh-attach"), mesh=get("--mesh"), envoy_binary=get("--envoy-binary"),
                             istio_version=get("--istio-version"))
        return AttachedMesh.attach(get("--mesh-attach"))

    def _local_mesh(self) -> Mesh:
        from harness.cli import local_mesh_options
        from harness.mesh.local.mesh import LocalMesh

        get = self.config.getoption
        options = argparse.Namespace(envoy_binary=get("--envoy-binary"), istio_version=get("--istio-version"),
                                     control_plane=get("--control-plane"), istiod_binary=get("--istiod-binary"))
        return LocalMesh(**local_mesh_options(options)).start()

    def mesh_info(self) -> MeshInfo | None:
        return self._mesh.info() if self._mesh is not None else None

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None


class CaseFile(pytest.File):
    """A YAML file of cases; invalid input is a collection error with every issue, no traceback."""

    def collect(self) -> Iterator[pytest.Collector]:
        cases = load_case_file(_shown(self.path))
        mesh = mesh_name(self.config.getoption("--mesh"), self.config.getoption("--control-plane"))
        issues = [issue for case in cases for issue in _istio_issues(case, mesh)]
        if issues:
            raise ValidationError(issues)
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

    def collect(self) -> Iterator[pytest.Item]:
        for check in self.case.checks:
            yield CheckItem.from_parent(self, name=check.name, check=check)

    def setup(self) -> None:
        try:
            mesh = self.config.stash[_SESSION].mesh()
            mesh.deploy(self.case.topology)
            self.token = mesh.apply(self.case.objects)
        except HarnessError as exc:
            self.setup_error = exc

    def teardown(self) -> None:
        if self.token is not None:
            self.config.stash[_SESSION].mesh().revert(self.token)
            self.token = None

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        return _harness_error_text(excinfo) or super().repr_failure(excinfo)


def _istio_issues(case: Case, mesh: MeshName) -> list[Issue]:
    """istiod's validation errors and what ``mesh`` cannot serve: found at collection, as the CLI does."""
    from harness.istio.validate import validate_objects

    return list(validate_objects(case.objects).errors) + case_refusals(case, mesh)


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
        lines += [f"  {line}" for line in forensics_lines(forensics_json(r.forensics))]
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
