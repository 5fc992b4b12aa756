"""What LocalMesh does for the traffic-policy checks: per-instance echo knobs, Envoy's response
flags and chosen endpoint on every Observation (joined from the sidecar's access log), ``drain``
of in-flight requests (mirror copies included), and the raw access log and /clusters.

Every assertion is certain, or states its chance of a false failure (below 1e-6) in a comment.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness.errors import SyncTimeout
from harness.istio.model import IstioObject
from harness.mesh.base import Observation, SendSpec
from harness.mesh.local.mesh import LocalMesh, in_flight
from harness.topology import DEFAULT_PORTS, Client, Service, ServicePort, Topology
from tests.integration.broken import SUBSETS

pytestmark = pytest.mark.envoy

URL = "http://reviews:9080/"
WAIT_S = 10.0  # bound on a test's own waits; each is for something that takes milliseconds

MakeObjects = Callable[[str], list[IstioObject]]  # the conftest fixture ``make_objects``



def send(mesh: LocalMesh, count: int, **kwargs: object) -> list[Observation]:
    return mesh.send(SendSpec(url=URL, count=count, concurrency=8, deadline_s=30.0, **kwargs))  # type: ignore[arg-type]


def http_ports(mesh: LocalMesh) -> dict[str, str]:
    """``127.0.0.1:PORT`` of each app instance's HTTP server -> instance name."""
    return {f"127.0.0.1:{port}": key.split("/")[0] for key, port in mesh.inventory().ports.items()
            if key.endswith("/http") and key.startswith("reviews-")}


def wait_in_flight(mesh: LocalMesh, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not in_flight(mesh.proxy_stats("client")):
        assert time.monotonic() < deadline, f"{what} was not in flight on the sidecar within {WAIT_S:g}s"
        time.sleep(0.005)


# --- knobs -------------------------------------------------------------------------------------


def test_knobs_per_version_and_instance_take_effect_and_restart_only_those(clean_mesh: LocalMesh) -> None:
    mesh = clean_mesh
    before = mesh.inventory().pids
    knobs = (("v2", (("status", "500"),)), ("reviews-v1-1", (("status", "503"),)))
    mesh.deploy(Topology(services=(Service("reviews", replicas=(("v1", 2),), knobs=knobs),)))
    after = mesh.inventory().pids

    assert after["reviews-v1-0"] == before["reviews-v1-0"], "an instance without knob changes was restarted"
    assert after["reviews-v2-0"] != before["reviews-v2-0"], "v2's knobs changed, its process must be new"
    observations = send(mesh, 300)
    by_instance = {(o.instance, o.status) for o in observations}
    # Without a VirtualService each request picks one of 3 endpoints; all 3 are seen but for
    # probability <= 3 * (2/3)^300 < 1e-50.
    assert by_instance == {("reviews-v1-0", 200), ("reviews-v1-1", 503), ("reviews-v2-0", 500)}


# --- flags and upstream host -------------------------------------------------------------------


def test_flags_are_empty_and_upstream_host_is_the_answering_instance(clean_mesh: LocalMesh) -> None:
    observations = send(clean_mesh, 50)
    ports = http_ports(clean_mesh)

    assert {o.status for o in observations} == {200}
    assert all(o.flags == () for o in observations)
    assert all(o.upstream_host is not None and ports[o.upstream_host] == o.instance for o in observations)


def test_a_virtual_service_matching_nothing_gives_nr_on_every_request(
    clean_mesh: LocalMesh, make_objects: MakeObjects
) -> None:
    clean_mesh.apply(make_objects(SUBSETS + """
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
    - match: [{headers: {end-user: {exact: jason}}}]
      route: [{destination: {host: reviews, subset: v2}}]
"""))
    observations = send(clean_mesh, 50)

    assert {(o.status, o.flags, o.upstream_host, o.instance) for o in observations} == {(404, ("NR",), None, None)}


def test_a_request_the_caller_gave_up_on_is_joined_with_its_downstream_disconnect(clean_mesh: LocalMesh) -> None:
    """Status 0 after reaching Envoy: the join waits until the log holds every request Envoy counted."""
    observations = send(clean_mesh, 4, headers=(("x-echo-delay", "3s"),), timeout_s=0.3)

    assert {o.status for o in observations} == {0}
    assert all("DC" in o.flags for o in observations), [o.flags for o in observations]
    clean_mesh.drain()


def test_the_disconnect_join_still_waits_after_a_listener_was_removed(clean_mesh: LocalMesh) -> None:
    """Envoy drops the request counter of a removed listener but not its log lines, so the join compares
    what the batch added, not totals. (With totals it returned at once and, when Envoy wrote the DC lines
    a little late -- seen on a loaded machine -- the flags were missing; here they may come in time anyway.)"""
    with_port_80 = Service("reviews", ports=(ServicePort("http", 80), *DEFAULT_PORTS))
    clean_mesh.deploy(Topology(services=(with_port_80,)))
    assert {o.status for o in clean_mesh.send(SendSpec(url="http://reviews/", count=20))} == {200}
    clean_mesh.deploy(Topology())  # the port-80 listener goes, its 20 lines stay

    observations = send(clean_mesh, 4, headers=(("x-echo-delay", "3s"),), timeout_s=0.3)

    assert all("DC" in o.flags for o in observations), [o.flags for o in observations]
    clean_mesh.drain()


def test_the_join_keeps_up_with_10k_requests_in_one_batch(clean_mesh: LocalMesh) -> None:
    started = time.monotonic()
    observations = clean_mesh.send(SendSpec(url=URL, count=10_000, concurrency=32, deadline_s=60.0))
    took = time.monotonic() - started
    ports = http_ports(clean_mesh)

    assert len(observations) == 10_000 and {o.status for o in observations} == {200}
    assert all(o.flags == () and o.upstream_host in ports for o in observations)
    assert took < 60.0, f"10k requests with the join took {took:.1f}s"  # measured ~2 s; the bound is the deadline


def test_access_log_and_clusters_expose_the_evidence(clean_mesh: LocalMesh) -> None:
    observations = send(clean_mesh, 5)
    logged = {line["request_id"]: line for line in clean_mesh.access_log("client")}
    clusters = clean_mesh.clusters("client")

    for o in observations:
        assert logged[o.request_id]["upstream_host"] == o.upstream_host
        assert logged[o.request_id]["response_code"] == o.status
    hosts = {
        f"{h['address']['socket_address']['address']}:{h['address']['socket_address']['port_value']}"
        for c in clusters["cluster_statuses"] if c["name"].startswith("outbound|9080||reviews.")
        for h in c.get("host_statuses", [])
    }
    assert hosts == set(http_ports(clean_mesh))


# --- drain -------------------------------------------------------------------------------------


def test_drain_returns_when_idle(clean_mesh: LocalMesh) -> None:
    send(clean_mesh, 10)
    clean_mesh.drain(timeout_s=2.0)  # raises SyncTimeout if anything stayed active for 2 s


def test_drain_waits_for_a_slow_request_in_flight(clean_mesh: LocalMesh) -> None:
    """The short drain must time out: the app holds the request for 2 s, the drain gives up after 0.05 s."""
    delay_s = 2.0
    with ThreadPoolExecutor(max_workers=1) as pool:
        started = time.monotonic()
        slow = pool.submit(send, clean_mesh, 1, headers=(("x-echo-delay", f"{delay_s:g}s"),))
        wait_in_flight(clean_mesh, "the slow request")
        with pytest.raises(SyncTimeout) as timed_out:
            clean_mesh.drain(timeout_s=0.05)
        assert re.fullmatch(  # the stat name of a cluster may carry istiod's ";" delimiter
            r"drain: requests still in flight after 0\.05s: "
            r"client: cluster\.outbound\|9080\|\|reviews\.default\.svc\.cluster\.local;?\.upstream_rq_active = 1, "
            r"client: http\.outbound_0\.0\.0\.0_9080\.downstream_rq_active = 1",
            str(timed_out.value),
        ), str(timed_out.value)
        clean_mesh.drain(timeout_s=WAIT_S)
        drained = time.monotonic()
        assert drained - started >= delay_s, "drain returned before the app could have answered"
        assert [o.status for o in slow.result(timeout=WAIT_S)] == [200]


def test_drain_waits_for_a_mirror_copy(clean_mesh: LocalMesh, make_objects: MakeObjects) -> None:
    """The caller's answer comes from fast v1 while the mirrored copy sits in slow v2."""
    delay_s = 1.0
    slow_v2 = (("v2", (("delay", f"{delay_s:g}s"),)),)
    clean_mesh.deploy(Topology(services=(Service("reviews", knobs=slow_v2),)))
    clean_mesh.apply(make_objects(SUBSETS + """
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
    - route: [{destination: {host: reviews, subset: v1}}]
      mirror: {host: reviews, subset: v2}
"""))
    started = time.monotonic()
    observations = send(clean_mesh, 1)
    answered = time.monotonic()
    clean_mesh.drain(timeout_s=WAIT_S)
    drained = time.monotonic()

    assert [(o.status, o.version) for o in observations] == [(200, "v1")]
    assert answered - started < delay_s, "the caller waited for the mirror copy"
    assert drained - started >= delay_s, "drain returned while the mirror copy was still in v2"
    assert [r.request_id for r in clean_mesh.app_log("reviews", "v2")][-1:] == [observations[0].request_id]


# --- several clients ---------------------------------------------------------------------------


def test_each_client_sends_through_its_own_sidecar_and_log(clean_mesh: LocalMesh) -> None:
    mesh = clean_mesh
    other = Client("other", labels=(("app", "other"), ("version", "v1")))
    mesh.deploy(Topology(clients=(Client(), other)))
    observations = mesh.send(SendSpec(url=URL, count=20, client="other"))
    ports = http_ports(mesh)

    assert all(o.status == 200 and o.flags == () and o.upstream_host in ports for o in observations)
    ids = {o.request_id for o in observations}
    assert ids <= {line["request_id"] for line in mesh.access_log("other")}
    assert not ids & {line["request_id"] for line in mesh.access_log("client")}
    assert (mesh.source_ip("client"), mesh.source_ip("other")) == ("127.0.0.1", "127.0.0.1")  # distinct is opt-in


def test_distinct_source_addresses_reach_the_sidecar_from_each_client() -> None:
    """With distinct_source_ips, client i sends from 127.0.0.(1+i): the sidecar's access log shows it."""
    topology = Topology(clients=(Client(), Client("other", labels=(("app", "other"),))))
    with LocalMesh(distinct_source_ips=True) as mesh:
        mesh.deploy(topology)
        for client in ("client", "other"):
            observations = mesh.send(SendSpec(url=URL, count=5, client=client))
            assert [o.status for o in observations] == [200] * 5
            seen = {line["downstream_remote_address"].rsplit(":", 1)[0] for line in mesh.access_log(client)}
            assert seen == {mesh.source_ip(client)}
        assert (mesh.source_ip("client"), mesh.source_ip("other")) == ("127.0.0.1", "127.0.0.2")
