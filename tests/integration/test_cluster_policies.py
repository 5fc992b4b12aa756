"""DestinationRule traffic policies on live traffic through real Envoy: circuit breakers, outlier
detection and consistent hashing, each translated by ``translate/clusters.py`` and ``translate/lb.py``.

Every assertion is certain (the reason is in a comment), or states its chance of a false failure,
below 1e-6. Waits are bounded and say what they waited for.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import pytest

from harness.istio.model import IstioObject
from harness.mesh.base import Observation, SendSpec
from harness.mesh.local.mesh import LocalMesh
from harness.mesh.local.translate import names
from harness.topology import Service, Topology
from tests.integration.broken import destination_rule

pytestmark = pytest.mark.envoy

URL = "http://reviews:9080/"
FQDN = "reviews.default.svc.cluster.local"
CLUSTER = names.outbound_cluster(9080, None, FQDN)
WAIT_S = 10.0  # bound on the test's own waits; each is for something that takes milliseconds
ONE_V1 = Topology(services=(Service("reviews", versions=("v1",)),))

MakeObjects = Callable[[str], list[IstioObject]]  # the conftest fixture ``make_objects``


def send(mesh: LocalMesh, count: int, concurrency: int, headers: tuple[tuple[str, str], ...] = ()) -> list[Observation]:
    return mesh.send(SendSpec(url=URL, count=count, concurrency=concurrency, headers=headers, deadline_s=30.0))


def cluster_stat(stats: Mapping[str, int], stat: str) -> int:
    """``cluster.<CLUSTER>.<stat>``, whether Envoy spells the name with the alt-stat ``;`` or without."""
    return sum(stats.get(f"cluster.{name}.{stat}", 0) for name in (CLUSTER, names.alt_stat_name(CLUSTER)))


def overflows(mesh: LocalMesh) -> int:
    """Requests refused by the breakers: Envoy counts a refusal as pending or (rarely) active overflow."""
    stats = mesh.proxy_stats("client")
    return cluster_stat(stats, "upstream_rq_pending_overflow") + cluster_stat(stats, "upstream_rq_active_overflow")


def wait_for_ejection(mesh: LocalMesh) -> None:
    """Until the sidecar has ejected a host of CLUSTER for consecutive 5xx (bounded)."""
    deadline = time.monotonic() + WAIT_S
    while cluster_stat(mesh.proxy_stats("client"), "outlier_detection.ejections_enforced_consecutive_5xx") < 1:
        assert time.monotonic() < deadline, f"no consecutive-5xx ejection on {CLUSTER} within {WAIT_S:g}s"
        time.sleep(0.01)


# --- circuit breakers ---------------------------------------------------------------------------


def test_pending_overflow_answers_503_overloaded(clean_mesh: LocalMesh, make_objects: MakeObjects) -> None:
    mesh = clean_mesh
    mesh.deploy(ONE_V1)
    mesh.apply(make_objects(destination_rule("{connectionPool: {tcp: {maxConnections: 1}, "
                                             "http: {http1MaxPendingRequests: 1}}}")))
    before = overflows(mesh)
    observations = send(mesh, 10, concurrency=10, headers=(("x-echo-delay", "500ms"),))
    refused = [o for o in observations if o.status == 503]
    # Certain: the 10 requests start together and each holds the one allowed HTTP/1.1 connection for
    # 500 ms, so at most 1 is active and 1 pending while the others arrive: at least 8 are refused,
    # and the first one admitted completes (timeout 30 s).
    assert refused, f"no request was refused: {[o.status for o in observations]}"
    assert any(o.status == 200 for o in observations), f"no request got through: {[o.status for o in observations]}"
    assert {o.status for o in observations} == {200, 503}
    for o in refused:
        assert o.headers.get("x-envoy-overloaded") == "true", o
        assert o.flags == ("UO",) and o.instance is None, o
    assert overflows(mesh) - before == len(refused)


def test_max_connections_alone_only_queues(clean_mesh: LocalMesh, make_objects: MakeObjects) -> None:
    mesh = clean_mesh
    mesh.deploy(ONE_V1)
    mesh.apply(make_objects(destination_rule("{connectionPool: {tcp: {maxConnections: 1}}}")))
    stats = mesh.proxy_stats("client")
    before_overflow, before_cx = overflows(mesh), cluster_stat(stats, "upstream_cx_overflow")
    observations = send(mesh, 10, concurrency=10, headers=(("x-echo-delay", "100ms"),))
    # Certain: the pending queue and the request limit stay at 2^32-1, so every request waits its turn.
    assert [o.status for o in observations] == [200] * 10
    assert overflows(mesh) == before_overflow
    # Certain: 10 requests wanted a connection while the only one allowed was busy.
    assert cluster_stat(mesh.proxy_stats("client"), "upstream_cx_overflow") > before_cx


# --- outlier detection --------------------------------------------------------------------------


def test_outlier_ejects_the_only_host_and_then_answers_no_healthy_upstream(
    clean_mesh: LocalMesh, make_objects: MakeObjects
) -> None:
    mesh = clean_mesh
    mesh.deploy(ONE_V1)
    mesh.apply(make_objects(destination_rule(
        "{outlierDetection: {consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 100}}"
    )))
    # Three 500s in a row from the only host (500 is not retried by istiod's default retry policy).
    failing = send(mesh, 3, concurrency=1, headers=(("x-echo-status", "500"),))
    assert [o.status for o in failing] == [500] * 3
    wait_for_ejection(mesh)
    # The ejection is applied on Envoy's main thread (the stat proves it) and posted to the one idle
    # worker, which runs it long before this next batch (an HTTP call away) reaches it. The host stays
    # out for 30 s, and minHealthPercent defaults to 0, which turns panic mode off: so certainly every
    # request now gets 503 UH from Envoy instead of reaching the ejected host.
    observations = send(mesh, 10, concurrency=1)
    assert [(o.status, o.flags, o.instance) for o in observations] == [(503, ("UH",), None)] * 10


def test_outlier_ejects_the_bad_replica_and_traffic_moves_to_the_good_one(
    clean_mesh: LocalMesh, make_objects: MakeObjects
) -> None:
    mesh = clean_mesh
    knobs = (("reviews-v1-1", (("status", "500"),)),)
    mesh.deploy(Topology(services=(Service("reviews", versions=("v1",), replicas=(("v1", 2),), knobs=knobs),)))
    mesh.apply(make_objects(destination_rule(
        "{outlierDetection: {consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 100}}"
    )))
    # One at a time, each request goes to either replica with probability 1/2 (least-request with
    # nothing active picks at random), so the bad one sees at least 3 of 40 but for probability
    # (1 + 40 + 780) / 2^40 < 1e-9.
    warmup = send(mesh, 40, concurrency=1)
    assert {(o.instance, o.status) for o in warmup} <= {("reviews-v1-0", 200), ("reviews-v1-1", 500)}
    wait_for_ejection(mesh)
    stats = mesh.proxy_stats("client")
    assert cluster_stat(stats, "outlier_detection.ejections_active") == 1
    # Certain (as above): the bad replica is out for 30 s, so every request goes to the good one.
    observations = send(mesh, 20, concurrency=4)
    assert {(o.instance, o.status) for o in observations} == {("reviews-v1-0", 200)}


# --- consistent hash ----------------------------------------------------------------------------


def test_consistent_hash_on_a_header_pins_each_value_to_one_instance(
    clean_mesh: LocalMesh, make_objects: MakeObjects
) -> None:
    mesh = clean_mesh
    mesh.deploy(Topology(services=(Service("reviews", versions=("v1",), replicas=(("v1", 3),)),)))
    mesh.apply(make_objects(destination_rule("{loadBalancer: {consistentHash: {httpHeaderName: x-user}}}")))
    # Certain: the ring and the header's hash are fixed, so one value always lands on one host.
    same = send(mesh, 50, concurrency=8, headers=(("x-user", "alice"),))
    assert all(o.status == 200 for o in same), [o.status for o in same]
    assert len({o.instance for o in same}) == 1, {o.instance for o in same}
    # Over 60 values, more than one instance answers. The header hash (xxHash64) puts each value at an
    # effectively uniform ring position, so all 60 land on one host with probability
    # sum_h share_h^60 <= max_share^59. Each of the 3 hosts owns ~341 of the 1024 ring points, whose
    # positions are hashes of the hosts' addresses: a host's share is then Beta(341, 683)-like, mean
    # 1/3, sd 0.015, and exceeds 0.6 with probability below 1e-30. So the chance of a false failure
    # is below 0.6^59 + 1e-30 < 1e-13.
    instances = set()
    for i in range(60):
        (observation,) = send(mesh, 1, concurrency=1, headers=(("x-user", f"user-{i}"),))
        assert observation.status == 200, observation
        instances.add(observation.instance)
    assert len(instances) > 1, instances
