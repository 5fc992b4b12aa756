"""Backend-blind contract checks: the same small checks on the local mesh (always) and on real Istio in kind
(only where Docker, a running engine, kind and kubectl exist; skipped with the reason otherwise).

Every check is deterministic (100% routes and faults), so no statistics are needed and nothing can
flake by chance. Run only the kind side with ``pytest -m kind tests/kube/test_kube_contract.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.errors import HarnessError
from harness.istio.load import load_objects
from harness.mesh.base import Mesh, SendSpec
from harness.mesh.kube.session import SETUP_BOUND_S
from harness.topology import DEFAULT_TOPOLOGY
from harness.yamlsource import load_documents
from tests.kube.recorded import SUBSETS

ROUTE_TO_V2 = SUBSETS + """---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v2}}]}]
"""
ABORT_418 = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{fault: {abort: {httpStatus: 418, percentage: {value: 100}}}, route: [{destination: {host: reviews}}]}]
"""


def _kind_mesh() -> Mesh:
    from harness.mesh.kube.session import KubeOptions, check_prerequisites, open_kube_mesh

    try:
        check_prerequisites(KubeOptions("kind"))
    except HarnessError as exc:
        pytest.skip(f"real Istio on kind not available here: {exc}")
    return open_kube_mesh(KubeOptions("kind"))


def _local_mesh() -> Mesh:
    from harness.mesh.local.mesh import LocalMesh

    return LocalMesh().start()


MESHES = [pytest.param("local", marks=pytest.mark.envoy),
          # the module fixture makes the kind mesh inside the first test's timeout: give it the set-up's bound
          pytest.param("kind", marks=[pytest.mark.kind, pytest.mark.timeout(SETUP_BOUND_S + 300)])]


@pytest.fixture(scope="module", params=MESHES)
def mesh(request: pytest.FixtureRequest) -> Iterator[Mesh]:
    made = _local_mesh() if request.param == "local" else _kind_mesh()
    try:
        made.deploy(DEFAULT_TOPOLOGY)
        yield made
    finally:
        made.close()


def test_contract_without_config_every_version_answers(mesh: Mesh) -> None:
    got = mesh.send(SendSpec(url="http://reviews:9080/", count=20, concurrency=4))
    assert [o.status for o in got] == [200] * 20
    assert {o.version for o in got} <= {"v1", "v2"} and {o.service for o in got} == {"reviews"}


def test_contract_route_all_to_v2_then_revert(mesh: Mesh) -> None:
    token = mesh.apply(load_objects(load_documents(ROUTE_TO_V2, "route.yaml")))
    try:
        got = mesh.send(SendSpec(url="http://reviews:9080/", count=30, concurrency=4))
        assert [(o.status, o.version, o.flags) for o in got] == [(200, "v2", ())] * 30
        mesh.drain()
        received = {r.request_id for r in mesh.app_log("reviews", "v2")}
        assert {o.request_id for o in got} <= received
        stats = {name.replace(";", ""): value for name, value in mesh.proxy_stats("client").items()}
        v2_total = next(v for k, v in stats.items() if k.startswith("cluster.outbound|9080|v2|reviews.")
                        and k.endswith(".upstream_rq_total"))
        assert v2_total >= 30
    finally:
        mesh.revert(token)


def test_contract_fault_abort_is_flagged_fi(mesh: Mesh) -> None:
    token = mesh.apply(load_objects(load_documents(ABORT_418, "abort.yaml")))
    try:
        got = mesh.send(SendSpec(url="http://reviews:9080/", count=10, concurrency=2))
        assert [(o.status, o.version, o.flags) for o in got] == [(418, None, ("FI",))] * 10
    finally:
        mesh.revert(token)


def test_contract_kind_tests_outlast_the_cluster_set_up() -> None:
    kind, = [p for p in MESHES if p.values == ("kind",)]
    timeout, = [m.args[0] for m in kind.marks if m.name == "timeout"]
    assert timeout >= SETUP_BOUND_S >= 3000  # create, install, build, load, first rollout: each at its bound
