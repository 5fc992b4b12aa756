"""KubeMesh logic against recorded API and admin answers (recordings/, written by hand: see its README).

What is pinned: the order of calls (namespaces, then workloads, stale ones deleted; case objects
before the sentinels that prove them synced; deletes on revert), the waits (rollout, endpoints,
sentinel in config_dump, access-log lines) and their messages, NACK and webhook rejection with the
previous objects restored, and cleanup in reverse order.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from harness.errors import ConfigRejected, SyncTimeout
from harness.istio.load import load_objects
from harness.istio.model import IstioObject
from harness.mesh.base import Mesh, SendSpec
from harness.mesh.forensics import LOG_LINES, Inspectable, gather
from harness.mesh.kube.manifests import RenderOptions
from harness.mesh.kube.mesh import KubeMesh
from harness.mesh.kube.session import running_istio
from harness.progress import Event, StepDone, StepStarted
from harness.topology import DEFAULT_TOPOLOGY
from harness.yamlsource import load_documents
from tests.kube.recorded import SUBSETS, RecordedApiServer, RecordedProxy, recording

NS = "/api/v1/namespaces/default"
ISTIO = "/apis/networking.istio.io/v1/namespaces/default"
CANARY = SUBSETS + """---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v1}, weight: 90}, {destination: {host: reviews, subset: v2}, weight: 10}], timeout: 1.5s}]
"""


def objects(text: str) -> list[IstioObject]:
    return load_objects(load_documents(text, "case.yaml"))


class Harness:
    def __init__(self, server: RecordedApiServer, proxy: RecordedProxy, mesh: KubeMesh, forwards: list[str],
                 closed: list[str], events: list[Event]) -> None:
        self.server, self.proxy, self.mesh, self.forwards, self.closed = server, proxy, mesh, forwards, closed
        self.events = events


@pytest.fixture
def recorded() -> Iterator[Harness]:
    server = RecordedApiServer()

    def dump() -> str:
        name = proxy.dump_name
        version = server.sentinel_version("default")
        return recording(name) if name.endswith(".txt") else json.dumps(recording(name)).replace(
            "__VERSION__", str(version)).replace("__NAMESPACE__", "default")

    proxy = RecordedProxy(dump)
    forwards: list[str] = []
    closed: list[str] = []
    events: list[Event] = []
    with proxy.serving() as port:
        def forward(namespace: str, pod: str, remote: int) -> tuple[int, Callable[[], None]]:
            forwards.append(f"{namespace}/{pod}:{remote}")
            return port, lambda: closed.append(f"{namespace}/{pod}:{remote}")

        mesh = KubeMesh(kind="kind", api=server.api(), render=RenderOptions(image="mesh-harness-echo:0123456789ab",
                        run_id="rec00001"), forward=forward, istio_version="1.30.3",
                        cleanups=[lambda: closed.append("cluster")], sync_timeout_s=0.5, rollout_timeout_s=0.5,
                        poll_s=0.05, observer=events.append)
        try:
            yield Harness(server, proxy, mesh, forwards, closed, events)
        finally:
            mesh.close()


def test_kube_mesh_is_a_mesh(recorded: Harness) -> None:
    assert isinstance(recorded.mesh, Mesh)


def test_kube_deploy_applies_namespace_then_workloads_and_deletes_stale_ones(recorded: Harness) -> None:
    recorded.mesh.deploy(DEFAULT_TOPOLOGY)
    patches = [c.removeprefix("PATCH ") for c in recorded.server.calls if c.startswith("PATCH")]
    assert patches[:6] == [
        "/api/v1/namespaces/default",
        f"{ISTIO}/serviceentries/mesh-harness-sync",
        f"{NS}/services/reviews",
        "/apis/apps/v1/namespaces/default/deployments/reviews-v1-0",
        "/apis/apps/v1/namespaces/default/deployments/reviews-v2-0",
        "/apis/apps/v1/namespaces/default/deployments/client",
    ]
    assert "DELETE /apis/apps/v1/namespaces/default/deployments/reviews-v3-0" in recorded.server.calls
    assert "DELETE /apis/apps/v1/namespaces/default/deployments/reviews-v1-0" not in recorded.server.calls
    assert recorded.forwards == ["default/client-6d8f7c9b5-q4w7e:18081", "default/client-6d8f7c9b5-q4w7e:15000"]
    assert recorded.server.sentinel_version("default") == recorded.mesh.config_version == 1
    assert recorded.mesh.info().envoy_version == "1.38.3-dev"


def test_kube_deploy_reports_the_rollout_wait_as_a_step(recorded: Harness) -> None:
    recorded.mesh.deploy(DEFAULT_TOPOLOGY)
    started, done = recorded.events
    assert started == StepStarted("rollout", "3 workloads, one ready pod each")
    assert isinstance(done, StepDone) and done.name == "rollout" and done.ok and done.seconds >= 0
    recorded.mesh.deploy(DEFAULT_TOPOLOGY)  # nothing to roll out: no step
    assert len(recorded.events) == 2


def test_kube_apply_writes_objects_before_sentinels_and_revert_deletes_them(recorded: Harness) -> None:
    mesh, server = recorded.mesh, recorded.server
    mesh.deploy(DEFAULT_TOPOLOGY)
    start = len(server.calls)
    token = mesh.apply(objects(CANARY))
    patches = [c for c in server.calls[start:] if c.startswith("PATCH")]
    assert patches == [f"PATCH {ISTIO}/destinationrules/reviews", f"PATCH {ISTIO}/virtualservices/reviews",
                       f"PATCH {ISTIO}/virtualservices/mesh-harness-sync", f"PATCH {ISTIO}/destinationrules/mesh-harness-sync"]
    vs = server.applied[f"{ISTIO}/virtualservices/reviews"]
    assert vs["spec"]["http"][0]["timeout"] == "1.5s"  # a Go duration again, as the CRD wants
    assert vs["metadata"]["labels"] == {"mesh-harness.io/run": "rec00001"}
    assert token.version == 2 and token.previous == ()
    start = len(server.calls)
    mesh.revert(token)
    assert [c for c in server.calls[start:] if c.startswith(("PATCH", "DELETE"))] == [
        f"DELETE {ISTIO}/destinationrules/reviews", f"DELETE {ISTIO}/virtualservices/reviews",
        f"PATCH {ISTIO}/virtualservices/mesh-harness-sync", f"PATCH {ISTIO}/destinationrules/mesh-harness-sync"]
    assert server.sentinel_version("default") == 3


def test_kube_apply_denied_by_the_webhook_restores_the_previous_objects(recorded: Harness) -> None:
    mesh, server = recorded.mesh, recorded.server
    mesh.deploy(DEFAULT_TOPOLOGY)
    mesh.apply(objects(CANARY)[:1])  # the DestinationRule
    before = server.sentinel_version("default")
    server.deny.add("reviews")
    with pytest.raises(ConfigRejected) as info:
        mesh.apply(objects(CANARY))  # the DestinationRule is unchanged, so only the VirtualService is written
    assert "admission webhook \"validation.istio.io\" denied the request" in str(info.value)
    assert info.value.type_name == "VirtualService/default/reviews"
    assert f"{ISTIO}/destinationrules/reviews" in server.applied
    assert f"{ISTIO}/virtualservices/reviews" not in server.applied
    assert server.sentinel_version("default") == before + 1  # the restored set was synced again


def test_kube_apply_nacked_by_envoy_raises_with_envoys_message(recorded: Harness) -> None:
    recorded.mesh.deploy(DEFAULT_TOPOLOGY)
    recorded.proxy.dump_name = "config_dump_nacked.json"
    with pytest.raises(ConfigRejected) as info:
        recorded.mesh.apply(objects(CANARY))
    assert "Routes 9080: Proto constraint validation failed" in info.value.detail
    assert "client-6d8f7c9b5-q4w7e" in info.value.node


def test_kube_sync_timeout_names_what_was_missing(recorded: Harness) -> None:
    recorded.mesh.deploy(DEFAULT_TOPOLOGY)
    recorded.proxy.dump_name = "stats.json"  # a dump without the sentinel: istiod never pushes
    with pytest.raises(SyncTimeout) as info:
        recorded.mesh.apply(objects(CANARY))
    text = str(info.value)
    assert "config version 2: client sidecars did not get istiod's push within 0.5s" in text
    assert "client: route v2 missing, cluster missing" in text


def test_kube_deploy_timeout_shows_pod_state_and_events(recorded: Harness) -> None:
    recorded.server.pods = "pods_image_missing.json"
    with pytest.raises(SyncTimeout) as info:
        recorded.mesh.deploy(DEFAULT_TOPOLOGY)
    text = str(info.value)
    assert "reviews-v1-0: reviews-v1-0-7c9d8f6b5-new01 Pending echo: ErrImageNeverPull" in text
    assert "event reviews-v1-0-7c9d8f6b5-new01: Failed: Error: ErrImageNeverPull" in text


def test_kube_send_joins_access_log_flags_by_request_id(recorded: Harness) -> None:
    recorded.mesh.deploy(DEFAULT_TOPOLOGY)
    got = recorded.mesh.send(SendSpec(url="http://reviews:9080/", count=2))
    assert [(o.status, o.flags, o.upstream_host, o.version) for o in got] == [
        (200, (), "10.244.0.11:8080", "v1"), (503, ("FI",), None, None)]
    assert "/forward" in recorded.proxy.paths


def test_kube_failure_forensics_read_the_sidecar_through_the_api(recorded: Harness) -> None:
    # The same forensics as the local mesh: config_dump through the admin port-forward, the access-log tail from
    # the istio-proxy container's log (tailLines: only the end is fetched), kept to the failed check's host.
    mesh = recorded.mesh
    mesh.deploy(DEFAULT_TOPOLOGY)
    assert isinstance(mesh, Inspectable)
    tail = mesh.access_log_tail("client", LOG_LINES)
    assert recorded.server.log_queries[-1]["tailLines"] == [str(LOG_LINES)]
    assert recorded.server.log_queries[-1]["container"] == ["istio-proxy"]
    found = gather("client", "reviews", 9080, mesh.config_dump("client"), tail, [])
    assert [c["route_config"]["name"] for c in found.route_configs] == ["9080"]
    assert found.route_configs[0]["route_config"]["virtual_hosts"][0]["name"] == "reviews.default.svc.cluster.local:9080"
    assert found.clusters and all(str(c["name"]).startswith("outbound|9080|") for c in found.clusters)
    assert any(line.startswith("start_time=2026-05-20T10:00:10.500Z method=GET authority=reviews:9080 path=/ "
                               "response_code=503 response_flags=FI") for line in found.access_log)


def test_kube_stats_drain_and_app_log_read_the_pods(recorded: Harness) -> None:
    mesh = recorded.mesh
    mesh.deploy(DEFAULT_TOPOLOGY)
    stats = mesh.proxy_stats("client")
    assert stats["cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_rq_total"] == 2
    mesh.drain(timeout_s=1.0)  # every in-flight gauge is 0 (xds-grpc's 1 is not traffic)
    log = mesh.app_log("reviews", "v1")
    assert [(r.request_id, r.instance) for r in log] == [("5d0b8a1f9c2e3d4f5a6b7c8d-0", "reviews-v1-0")]
    assert "default/reviews-v1-0-7c9d8f6b5-x2k4q:18081" in recorded.forwards


def test_kube_close_undoes_in_reverse_order_once(recorded: Harness) -> None:
    mesh, server = recorded.mesh, recorded.server
    mesh.deploy(DEFAULT_TOPOLOGY)
    mesh.apply(objects(CANARY))
    start = len(server.calls)
    mesh.close()
    mesh.close()
    assert recorded.closed[-1] == "cluster" and recorded.closed.count("cluster") == 1
    assert recorded.closed[:2] == ["default/client-6d8f7c9b5-q4w7e:18081", "default/client-6d8f7c9b5-q4w7e:15000"]
    deletes = [c for c in server.calls[start:] if c.startswith("GET") and "labelSelector" not in c]
    assert "DELETE /api/v1/namespaces/default" in server.calls[start:]  # the run made the namespace
    assert deletes  # and waited until it was gone


def test_kube_running_istio_reads_istiods_image(recorded: Harness) -> None:
    assert running_istio(recorded.server.api(), None) == "1.30.3"
    assert running_istio(recorded.server.api(), "canary") is None
