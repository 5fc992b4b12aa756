"""The differential test: the builtin translator measured against real istiod, case by case.

Every shipped case (``cases/*.yaml``) and every translator golden input (``tests/golden/translate``,
except those pinned to another Istio release than the istiod build) runs on two local meshes, one
per control plane: the builtin translator emulating the istiod build's release, and real istiod.
Both get the same topology and objects; the client sidecar's config_dump (and the ingress
gateway's, when the case has one) are compared by ``harness.mesh.local.fidelity``. Any difference
not listed in ``accepted_differences.yaml`` (``<proxy>:<id>`` pattern -> reason) fails its case. A
case one plane refuses (istiod's validation, a NACK) and the other applies is the difference
``apply:<case id>``.

One mesh per plane for the module, each driven by a thread of its own, so that both planes work at
once while the tests wait for their case in turn; cases run grouped by topology, so that apps
restart only when the topology changes, and each case is one sync (its objects replace the last
case's). Without a cached istiod build (``mesh-harness istiod
build``) every case is skipped with that reason (in CI, which builds it first, they fail: tests/istiod.py).
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.case import load_case_file
from harness.errors import ConfigRejected, MeshError, ValidationError
from harness.istio.model import Gateway, IstioObject
from harness.mesh.base import SyncToken
from harness.mesh.local.fidelity import Difference, accepted, differences, format_differences
from harness.mesh.local.mesh import GATEWAY, LocalMesh
from harness.topology import INGRESS_GATEWAY, Topology
from tests.istiod import istiod_build

pytestmark = pytest.mark.envoy

ROOT = Path(__file__).resolve().parents[2]
ACCEPTED_FILE = Path(__file__).with_name("accepted_differences.yaml")
GOLDEN_INPUTS = ROOT / "tests" / "golden" / "golden_translate_inputs.py"


@dataclass(frozen=True)
class FidelityCase:
    id: str
    topology: Topology
    objects: tuple[IstioObject, ...]
    client: str
    gateway: bool


@dataclass(frozen=True)
class Dumps:
    """One proxy's config_dump per proxy name, and the mesh's endpoint names (``ip:port`` -> instance)."""

    proxies: Mapping[str, dict[str, Any]]
    endpoints: Mapping[str, str]
    refused: str | None = None
    """The plane's refusal of the case's objects (istiod's validation, a NACK), with nothing applied."""


def _istiod_release() -> str | None:
    """The Istio release of the cached istiod build (``1.31-dev+eed52ebb66ad`` -> ``1.31``), None without one."""
    from harness.mesh.local.istiod.build import locate_istiod

    try:
        label = locate_istiod().label
    except MeshError:
        return None
    release = label.split("-", 1)[0].split("+", 1)[0]
    return ".".join(release.split(".")[:2])


ISTIOD_RELEASE = _istiod_release()
BUILTIN_RELEASE = ISTIOD_RELEASE or "1.31"
"""The builtin plane emulates the istiod build's release (its version switches are per minor release)."""


def shipped_cases() -> list[FidelityCase]:
    out = []
    for path in sorted((ROOT / "cases").glob("*.yaml")):
        for case in load_case_file(path):
            out.append(FidelityCase(f"{path.stem}/{case.name}", case.topology, tuple(case.objects), "client",
                                    case.topology.gateway or any(isinstance(o, Gateway) for o in case.objects)))
    return out


def golden_cases() -> list[FidelityCase]:
    """The translator goldens' inputs as cases; a golden pinned to another release than the build's is left out
    (it pins that release's behaviour, which the istiod build does not have)."""
    spec = importlib.util.spec_from_file_location("golden_translate_inputs", GOLDEN_INPUTS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = []
    for directory in module.golden_cases():
        pinned = yaml.safe_load((directory / "input.yaml").read_text(encoding="utf-8")).get("istio_version")
        if pinned is not None and str(pinned) not in ("1.30", BUILTIN_RELEASE):  # 1.30: the goldens' default
            continue
        inp = module.load_golden_input(directory)
        gateway = inp.client == INGRESS_GATEWAY
        topology = replace(inp.topology, gateway=True) if gateway else inp.topology
        out.append(FidelityCase(f"golden/{directory.name}", topology, tuple(inp.objects),
                                inp.topology.clients[0].name, gateway))
    return out


CASES = [*shipped_cases(), *golden_cases()]
BY_ID = {c.id: c for c in CASES}


def load_accepted(path: Path = ACCEPTED_FILE) -> dict[str, str]:
    """``id pattern -> reason`` from the checked-in list; every entry needs a non-empty reason."""
    entries = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    assert isinstance(entries, dict), f"{path}: expected a mapping of id pattern -> reason"
    for pattern, reason in entries.items():
        assert isinstance(reason, str) and reason.strip(), f"{path}: {pattern!r} has no reason"
    return {str(k): str(v) for k, v in entries.items()}


# --- running the cases on one plane ------------------------------------------------------------------


class PlaneRunner:
    """Runs the given cases, grouped by topology, on one mesh in a thread of its own; ``dumps(case_id)``
    waits for that case's config_dumps (or raises what went wrong with it)."""

    def __init__(self, make_mesh: Callable[[], LocalMesh], cases: Sequence[FidelityCase]) -> None:
        self._make_mesh = make_mesh
        self._order = sorted(cases, key=lambda c: repr(c.topology))  # stable: same topology, consecutive
        self._results: dict[str, Future[Dumps]] = {c.id: Future() for c in cases}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fidelity-plane", daemon=True)
        self._thread.start()

    def dumps(self, case_id: str, timeout_s: float = 240.0) -> Dumps:
        return self._results[case_id].result(timeout=timeout_s)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=120)

    def _run(self) -> None:
        try:
            with self._make_mesh() as mesh:
                empty: SyncToken | None = None
                for case in self._order:
                    if self._stop.is_set():
                        break
                    future = self._results[case.id]
                    try:
                        if case.topology != mesh.topology and empty is not None:
                            mesh.revert(empty)  # no objects of the last topology's cases under the next one
                        mesh.deploy(case.topology)
                        empty = empty or mesh.apply([])
                        future.set_result(self._one(mesh, case, empty))
                    except Exception as exc:  # noqa: BLE001 - handed to the case's test
                        future.set_exception(exc)
                if empty is not None:
                    mesh.revert(empty)
        except Exception as exc:  # noqa: BLE001 - the mesh itself failed: every case still waiting gets it
            for future in self._results.values():
                if not future.done():
                    future.set_exception(exc)
        finally:
            for future in self._results.values():
                if not future.done():
                    future.set_exception(RuntimeError("the plane's runner stopped before this case"))

    @staticmethod
    def _one(mesh: LocalMesh, case: FidelityCase, empty: SyncToken) -> Dumps:
        """The case's dumps with exactly its objects applied. Reverting to ``empty`` with the case's objects
        as the state to restore replaces the last case's objects by this one's in one sync (an apply after
        a revert would take two: istiod's are ~0.3 s each); on failure the mesh goes back to no objects."""
        try:
            try:
                mesh.revert(SyncToken(empty.version, tuple(case.objects)))
            except (ValidationError, ConfigRejected) as exc:  # the mesh rolled back: nothing of the case applied
                return Dumps({}, {}, refused=str(exc).strip().splitlines()[0])
            proxies = {"client": mesh.sidecar(case.client).admin_json("/config_dump?include_eds")}
            if case.gateway:
                proxies["gateway"] = mesh.sidecar(GATEWAY).admin_json("/config_dump?include_eds")
        except BaseException:
            mesh.revert(empty)
            raise
        endpoints = {f"127.0.0.1:{port}": name for name, port in mesh.inventory().ports.items()
                     if name.endswith(("/http", "/grpc"))}
        return Dumps(proxies, endpoints)


def _selected(request: pytest.FixtureRequest) -> list[FidelityCase]:
    """The cases of this module that this session runs (``-k`` and friends honoured)."""
    ids = [item.callspec.params["case_id"] for item in request.session.items
           if isinstance(item, pytest.Function) and item.module is request.module
           and hasattr(item, "callspec") and "case_id" in item.callspec.params]
    return [BY_ID[str(i)] for i in ids]


@pytest.fixture(scope="module")
def istiod_runner(request: pytest.FixtureRequest) -> Iterator[PlaneRunner]:
    if ISTIOD_RELEASE is None:
        istiod_build()  # skips naming the build command (fails in CI, which builds it first)
    runner = PlaneRunner(lambda: LocalMesh(control_plane="istiod"), _selected(request))
    yield runner
    runner.close()


@pytest.fixture(scope="module")
def builtin_runner(request: pytest.FixtureRequest, istiod_runner: PlaneRunner) -> Iterator[PlaneRunner]:
    runner = PlaneRunner(lambda: LocalMesh(control_plane="builtin", istio_version=BUILTIN_RELEASE), _selected(request))
    yield runner
    runner.close()


@pytest.fixture(scope="module")
def accepted_differences() -> dict[str, str]:
    return load_accepted()


@pytest.mark.parametrize("case_id", [c.id for c in CASES])
def test_builtin_matches_istiod(case_id: str, istiod_runner: PlaneRunner, builtin_runner: PlaneRunner,
                                accepted_differences: dict[str, str]) -> None:
    istiod = istiod_runner.dumps(case_id)
    builtin = builtin_runner.dumps(case_id)
    unexplained: list[Difference] = []
    if builtin.refused or istiod.refused:
        outcome = Difference(f"apply:{case_id}", builtin.refused or "applied", istiod.refused or "applied")
        if (builtin.refused is None or istiod.refused is None) and accepted(outcome, accepted_differences) is None:
            unexplained.append(outcome)
    both_applied = builtin.refused is None and istiod.refused is None
    for proxy in sorted(builtin.proxies.keys() | istiod.proxies.keys()) if both_applied else []:
        assert proxy in builtin.proxies and proxy in istiod.proxies, f"{proxy}: dumped on one plane only"
        found = differences(builtin.proxies[proxy], istiod.proxies[proxy],
                            builtin_endpoints=builtin.endpoints, istiod_endpoints=istiod.endpoints)
        unexplained += [Difference(f"{proxy}:{d.id}", d.builtin, d.istiod) for d in found
                        if accepted(Difference(f"{proxy}:{d.id}", d.builtin, d.istiod), accepted_differences) is None]
    if unexplained:
        pytest.fail(f"{case_id}: the builtin translator differs from istiod {ISTIOD_RELEASE} where "
                    f"{ACCEPTED_FILE.name} accepts no difference:\n{format_differences(unexplained)}", pytrace=False)


def test_every_accepted_difference_has_a_reason() -> None:
    assert load_accepted()
