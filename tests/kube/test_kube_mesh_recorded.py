"""KubeMesh logic against recorded API and admin answers (recordings/, written by hand: see its README).

What is pinned: the order of calls (namespaces, then workloads, stale ones deleted; case objects
before the sentinels that prove them synced; deletes on revert), the waits (rollout, endpoints,
sentinel in config_dump, access-log lines) and their messages, NACK and webhook rejection with the
previous objects restored, and cleanup in reverse order.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest

from harness.case import load_case_file
from harness.cases_discovery import bundled_cases_dir
from harness.errors import ConfigRejected, MeshError, SyncTimeout
from harness.istio.load import load_objects
from harness.istio.model import IstioObject
from harness.mesh.base import Mesh, SendSpec
from harness.mesh.forensics import LOG_LINES, Inspectable, gather
from harness.mesh.kube.manifests import RenderOptions
from harness.mesh.kube.mesh import KubeMesh, rejected_growth
from harness.mesh.kube.session import running_istio
from harness.mesh.sentinels import sync_state
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


SENTINELS = [f"{ISTIO}/serviceentries/mesh-harness-sync", f"{ISTIO}/virtualservices/mesh-harness-sync",
             f"{ISTIO}/destinationrules/mesh-harness-sync"]
"""What every sync writes, in order, after the case's objects (no gateway)."""
GATEWAY_IP = "10.96.0.2"
GATEWAY_POD = "istio-system/istio-ingressgateway-5f9c7d6b8-m3n8p"


def objects(text: str) -> list[IstioObject]:
    return load_objects(load_documents(text, "case.yaml"))


class Harness:
    def __init__(self, server: RecordedApiServer, proxy: RecordedProxy, gateway: RecordedProxy, mesh: KubeMesh,
                 forwards: list[str], closed: list[str], events: list[Event]) -> None:
        self.server, self.proxy, self.gateway, self.mesh = server, proxy, gateway, mesh
        self.forwards, self.closed, self.events = forwards, closed, events


@pytest.fixture
def recorded() -> Iterator[Harness]:
    with recorded_mesh() as harness:
        yield harness


@contextmanager
def recorded_mesh(images: dict[str, str] | None = None) -> Iterator[Harness]:
    """A KubeMesh over the recorded API server and proxy (also for the dry-run plan's cross-check);
    ``images``: what the session would have built besides the echo image."""
    server = RecordedApiServer()

    def dump() -> str:
        name = proxy.dump_name
        version = server.sentinel_version("default")
        return recording(name) if name.endswith(".txt") else json.dumps(recording(name)).replace(
            "__VERSION__", str(version)).replace("__NAMESPACE__", "default")

    def gateway_dump() -> str:
        """The gateway's: the sentinel's, plus a connection manager patched by the request-id EnvoyFilter."""
        body = json.loads(dump())
        body["configs"].append(recording("listeners_gateway.json"))
        return json.dumps(body)

    proxy = RecordedProxy(dump)
    gateway = RecordedProxy(gateway_dump)
    forwards: list[str] = []
    closed: list[str] = []
    events: list[Event] = []
    with proxy.serving() as port, gateway.serving() as gateway_port:
        def forward(namespace: str, pod: str, remote: int) -> tuple[int, Callable[[], None]]:
            forwards.append(f"{namespace}/{pod}:{remote}")
            return gateway_port if namespace == "istio-system" else port, lambda: closed.append(
                f"{namespace}/{pod}:{remote}")

        mesh = KubeMesh(kind="kind", api=server.api(), render=RenderOptions(image="mesh-harness-echo:0123456789ab",
                        run_id="rec00001", gateway_ip=GATEWAY_IP), forward=forward, istio_version="1.30.3",
                        cleanups=[lambda: closed.append("cluster")], sync_timeout_s=0.5, rollout_timeout_s=0.5,
                        poll_s=0.05, observer=events.append, images=images)
        try:
            yield Harness(server, proxy, gateway, mesh, forwards, closed, events)
        finally:
            mesh.close()


def test_kube_mesh_is_a_mesh(recorded: Harness) -> None:
    assert isinstance(recorded.mesh, Mesh)


def test_kube_deploy_applies_namespace_then_workloads_and_deletes_stale_ones(recorded: Harness) -> None:
    recorded.mesh.deploy(DEFAULT_TOPOLOGY)
    patches = [c.removeprefix("PATCH ") for c in recorded.server.calls if c.startswith("PATCH")]
    assert patches == [
        "/api/v1/namespaces/default",
        f"{NS}/services/reviews",
        "/apis/apps/v1/namespaces/default/deployments/reviews-v1-0",
        "/apis/apps/v1/namespaces/default/deployments/reviews-v2-0",
        "/apis/apps/v1/namespaces/default/deployments/client",
        *SENTINELS,
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
                       *(f"PATCH {p}" for p in SENTINELS)]
    vs = server.applied[f"{ISTIO}/virtualservices/reviews"]
    assert vs["spec"]["http"][0]["timeout"] == "1.5s"  # a Go duration again, as the CRD wants
    assert vs["metadata"]["labels"] == {"mesh-harness.io/run": "rec00001"}
    assert token.version == 2 and token.previous == ()
    start = len(server.calls)
    mesh.revert(token)
    assert [c for c in server.calls[start:] if c.startswith(("PATCH", "DELETE"))] == [
        f"DELETE {ISTIO}/destinationrules/reviews", f"DELETE {ISTIO}/virtualservices/reviews",
        *(f"PATCH {p}" for p in SENTINELS)]
    entry = server.applied[f"{ISTIO}/serviceentries/mesh-harness-sync"]["spec"]
    assert entry["hosts"] == ["default.sync.mesh-harness.internal", "v3.default.sync.mesh-harness.internal"]
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


def test_kube_apply_rejected_by_envoys_rds_is_never_reported_as_synced(recorded: Harness) -> None:
    """Real Envoy 1.38 after rejecting an RDS update (recordings/real_*: captured from the local mesh's Envoy):
    its config_dump holds no error_state, so only the update_rejected counter shows the rejection; the sentinels
    alone (present in the dump) would have called the stale config synced."""
    real_dump = recording("real_config_dump_rds_rejected.json")
    assert sync_state(real_dump, "default", 1).rejected == ()  # nothing to see in the dump
    mesh, server = recorded.mesh, recorded.server
    mesh.deploy(DEFAULT_TOPOLOGY)
    recorded.proxy.stats_name = "real_stats_rds_rejected.json"
    with pytest.raises(ConfigRejected) as info:
        mesh.apply(objects(CANARY))
    assert "http.outbound.rds.local_route.update_rejected +1" in info.value.detail
    assert "client-6d8f7c9b5-q4w7e" in info.value.node
    assert f"{ISTIO}/virtualservices/reviews" not in server.applied  # the previous (empty) set was restored
    assert rejected_growth({"a.update_rejected": 1}, {"a.update_rejected": 1, "b.update_rejected": 2}) == [
        "b.update_rejected +2"]
    assert rejected_growth(None, {"a.update_rejected": 3}) == []  # a proxy seen the first time: its baseline


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


def test_kube_replaced_client_pod_gets_new_connections_and_the_old_ones_are_closed(recorded: Harness) -> None:
    mesh = recorded.mesh
    mesh.deploy(DEFAULT_TOPOLOGY)
    recorded.server.pods = "pods_client_replaced.json"
    knobs = (replace(DEFAULT_TOPOLOGY.services[0], knobs=(("v1", (("delay", "1ms"),)),)),)
    mesh.deploy(replace(DEFAULT_TOPOLOGY, services=knobs))  # a new topology: the client pod was recreated
    old = ["default/client-6d8f7c9b5-q4w7e:18081", "default/client-6d8f7c9b5-q4w7e:15000"]
    assert recorded.closed == old
    assert recorded.forwards[-2:] == ["default/client-6d8f7c9b5-r8t2x:18081", "default/client-6d8f7c9b5-r8t2x:15000"]


def test_kube_deploy_sweeps_what_a_crashed_run_left_in_an_existing_namespace(recorded: Harness) -> None:
    """A kept kind cluster after a crashed run: its VirtualService (another run label) would still route the
    next run's traffic; the first deploy into the namespace deletes it, and never this run's own objects."""
    server = recorded.server
    server.applied["/api/v1/namespaces/default"] = {"apiVersion": "v1", "kind": "Namespace",
                                                    "metadata": {"name": "default"}}
    recorded.mesh.deploy(DEFAULT_TOPOLOGY)
    assert f"DELETE {ISTIO}/virtualservices/reviews" in server.calls
    assert "PATCH /api/v1/namespaces/default" not in server.calls  # not made by the run: left as it is
    assert [c for c in server.calls if c.startswith("GET") and "virtualservices" in c] == [
        f"GET {ISTIO}/virtualservices"]  # once per namespace, not per deploy
    recorded.mesh.deploy(replace(DEFAULT_TOPOLOGY, services=(replace(DEFAULT_TOPOLOGY.services[0], knobs=(
        ("v1", (("delay", "1ms"),)),)),)))
    assert [c for c in server.calls if c.startswith("GET") and "virtualservices" in c] == [f"GET {ISTIO}/virtualservices"]


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


def test_kube_gateway_case_applies_gateways_awaits_the_gateway_and_sends_to_its_service(recorded: Harness) -> None:
    """The ingress-gateway case on kube: its Gateway is written (the API layer manages the kind), the sentinels
    gain a Gateway server that their VirtualService binds to, exported to the gateway's namespace too, the
    gateway proxy's config_dump is awaited with the client's, and ``via: gateway`` goes from the client pod to
    the gateway Service's ClusterIP with the case's Host, joined to the gateway's access log."""
    mesh, server, proxy = recorded.mesh, recorded.server, recorded.proxy
    case, = load_case_file(bundled_cases_dir() / "ingress-gateway.yaml")
    mesh.deploy(case.topology)
    assert f"{GATEWAY_POD}:15000" in recorded.forwards
    start, dumps = len(server.calls), proxy.paths.count("/config_dump")
    token = mesh.apply(case.objects)
    patches = [c.removeprefix("PATCH ") for c in server.calls[start:] if c.startswith("PATCH")]
    assert f"{ISTIO}/gateways/bookinfo-gateway" in patches
    assert patches[-4:] == [f"{ISTIO}/serviceentries/mesh-harness-sync", f"{ISTIO}/gateways/mesh-harness-sync",
                            f"{ISTIO}/virtualservices/mesh-harness-sync", f"{ISTIO}/destinationrules/mesh-harness-sync"]
    sync_vs = server.applied[f"{ISTIO}/virtualservices/mesh-harness-sync"]["spec"]
    assert sync_vs["gateways"] == ["mesh", "default/mesh-harness-sync"]
    assert sync_vs["exportTo"] == [".", "istio-system"]
    assert server.applied[f"{ISTIO}/serviceentries/mesh-harness-sync"]["spec"]["exportTo"] == [".", "istio-system"]
    assert proxy.paths.count("/config_dump") - dumps >= 1 and "/config_dump" in recorded.gateway.paths
    filters = [c for c in patches if "envoyfilters" in c]
    assert filters == [] and "PATCH /apis/networking.istio.io/v1alpha3/namespaces/istio-system/envoyfilters/" \
        "mesh-harness-gateway-request-id-rec00001" in server.calls  # written at deploy, in the gateway's namespace
    got = mesh.send(SendSpec(url="http://bookinfo.example.com/", count=2, via="gateway"))
    assert proxy.posted[-1]["connect_to"] == f"{GATEWAY_IP}:80" and proxy.posted[-1]["url"] == "http://bookinfo.example.com/"
    assert [o.status for o in got] == [200, 503]
    assert f"GET /api/v1/namespaces/istio-system/pods/{GATEWAY_POD.split('/')[1]}/log" in server.calls
    client = server.applied["/apis/apps/v1/namespaces/default/deployments/client"]["spec"]["template"]["metadata"]
    assert client["annotations"]["traffic.sidecar.istio.io/excludeOutboundIPRanges"] == f"{GATEWAY_IP}/32"
    mesh.revert(token)
    assert f"DELETE {ISTIO}/gateways/bookinfo-gateway" in server.calls
    gateway_log = f"GET /api/v1/namespaces/istio-system/pods/{GATEWAY_POD.split('/')[1]}/log"
    assert gateway_log in server.calls


def test_kube_gateway_is_not_synced_before_it_keeps_request_ids(recorded: Harness) -> None:
    """Without the EnvoyFilter in the gateway's config, the gateway would replace each caller's request id and the
    access-log join would never find its lines: the sync waits for it, and says which proxy lags."""
    case, = load_case_file(bundled_cases_dir() / "ingress-gateway.yaml")
    recorded.gateway.config_dump = recorded.proxy.config_dump  # the sentinels, but no patched connection manager
    with pytest.raises(SyncTimeout, match="istio-ingressgateway: route v1 missing"):
        recorded.mesh.deploy(case.topology)


def test_kube_gateway_case_without_a_gateway_service_is_a_clear_error(recorded: Harness) -> None:
    mesh = KubeMesh(kind="cluster", api=recorded.server.api(), render=RenderOptions(image="i:1", run_id="r"),
                    forward=lambda *a: (0, lambda: None), istio_version="1.30.3")
    case, = load_case_file(bundled_cases_dir() / "ingress-gateway.yaml")
    with pytest.raises(MeshError, match="no Service istio-system/istio-ingressgateway; install Istio's ingress gateway"):
        mesh.deploy(case.topology)
    mesh.close()
