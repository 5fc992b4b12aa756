"""What the istiod plane tells istiod (pure): the topology as ServiceEntries, WorkloadEntries and Sidecars,
the case's objects with loopback's stand-ins, node identities, the mesh config, and reading istiod's refusals."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from harness.istio.load import load_objects
from harness.mesh.local.istiod import plane
from harness.mesh.local.istiod.process import ISTIOD_ENV, IstiodProcess
from harness.mesh.local.istiod.registry import (
    APP_ADDRESS,
    PROXY_LABEL,
    Proxy,
    case_objects,
    mesh_config,
    proxies,
    registry_objects,
)
from harness.mesh.local.plane import Instance
from harness.topology import DEFAULT_TOPOLOGY, INGRESS_GATEWAY, Client, Service, ServicePort, Topology
from harness.yamlsource import load_documents

APPS = {"reviews-v1-0": Instance("reviews", "v1", http_port=41001, grpc_port=41002),
        "reviews-v2-0": Instance("reviews", "v2", http_port=42001, grpc_port=42002)}


def by_kind(docs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        out.setdefault(doc["kind"], []).append(doc)
    return out


def test_a_service_is_a_static_mesh_internal_service_entry_with_a_workload_entry_per_instance() -> None:
    found = proxies(DEFAULT_TOPOLOGY, "127.9.8")
    docs = by_kind(registry_objects(DEFAULT_TOPOLOGY, APPS, [found["client"]]))

    entry, = docs["ServiceEntry"]
    assert entry["metadata"] == {"name": "reviews", "namespace": "default"}
    assert entry["spec"] == {
        "hosts": ["reviews.default.svc.cluster.local"], "location": "MESH_INTERNAL", "resolution": "STATIC",
        "ports": [{"name": "http", "number": 9080, "protocol": "HTTP"}, {"name": "grpc", "number": 7070, "protocol": "GRPC"}],
        "workloadSelector": {"labels": {"app": "reviews"}}}
    v1 = next(w for w in docs["WorkloadEntry"] if w["metadata"]["name"] == "reviews-v1-0")
    assert v1["spec"]["address"] == APP_ADDRESS
    assert v1["spec"]["labels"] == {"app": "reviews", "version": "v1", "mesh-harness.io/instance": "reviews-v1-0"}
    assert v1["spec"]["ports"] == {"http": 41001, "grpc": 41002}  # the service port names onto the app's real ports
    assert len(docs["WorkloadEntry"]) == 2


def test_each_client_binds_its_listeners_to_an_address_of_its_own() -> None:
    topology = Topology(clients=(Client("client"), Client("tester", labels=(("app", "tester"),), namespace="other")))
    found = proxies(topology, "127.9.8")
    assert (found["client"].address, found["tester"].address, found[INGRESS_GATEWAY.name].address) == \
        ("127.9.8.10", "127.9.8.11", "127.9.8.2")
    sidecars = by_kind(registry_objects(topology, APPS, [found["client"], found["tester"]]))["Sidecar"]
    tester = next(s for s in sidecars if s["metadata"]["namespace"] == "other")
    assert tester["spec"] == {"workloadSelector": {"labels": {PROXY_LABEL: "tester"}},
                              "egress": [{"bind": "127.9.8.11", "hosts": ["*/*"]}]}


def test_node_identity_is_what_pilot_agent_would_send() -> None:
    client, gateway = proxies(DEFAULT_TOPOLOGY, "127.9.8")["client"], proxies(DEFAULT_TOPOLOGY, "127.9.8")[INGRESS_GATEWAY.name]
    assert client.node_id == "sidecar~127.9.8.10~client-0.default~default.svc.cluster.local"
    assert gateway.node_id == "router~127.9.8.2~istio-ingressgateway-0.istio-system~istio-system.svc.cluster.local"
    meta = client.metadata("1.31")
    assert meta["INTERCEPTION_MODE"] == "NONE" and meta["INSTANCE_IPS"] == "127.9.8.10" and meta["NAMESPACE"] == "default"
    assert meta["LABELS"] == {"app": "client", "version": "v1", PROXY_LABEL: "client"}
    assert all(isinstance(v, str) for k, v in meta.items() if k != "LABELS")  # istiod's NodeMetadata wants strings


def test_port_names_give_the_service_entry_the_protocol_a_service_would_have() -> None:
    topology = Topology(services=(Service("db", versions=("v1",), ports=(ServicePort("tcp-db", 5432),
                                                                         ServicePort("custom", 8000))),))
    entry, = by_kind(registry_objects(topology, {}, []))["ServiceEntry"]
    assert entry["spec"]["ports"] == [{"name": "tcp-db", "number": 5432, "protocol": "TCP"},
                                      {"name": "custom", "number": 8000}]  # unknown name: istiod sniffs


def test_case_objects_point_loopback_endpoints_at_the_external_app_and_bind_gateway_servers() -> None:
    topology = Topology(services=(Service("reviews"), Service("api", versions=("v1",), external=True,
                                                              ports=(ServicePort("http", 80),))))
    objects = load_objects(load_documents("""
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api}
spec:
  hosts: [api.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
""", "case.yaml"))
    gateway = proxies(topology, "127.9.8")[INGRESS_GATEWAY.name]
    entry, gw = case_objects(objects, topology, {"api-v1-0": Instance("api", "v1", http_port=43001, grpc_port=43002)}, gateway)
    assert entry["metadata"] == {"name": "api", "namespace": "default"}
    assert entry["spec"]["endpoints"] == [{"address": APP_ADDRESS, "ports": {"http": 43001}}]
    assert gw["spec"]["servers"][0]["bind"] == "127.9.8.2"


def test_mesh_config_turns_off_what_loopback_cannot_serve() -> None:
    config = mesh_config()
    assert config["enableAutoMtls"] is False and config["outboundTrafficPolicy"] == {"mode": "REGISTRY_ONLY"}
    assert (config["accessLogFile"], config["accessLogEncoding"]) == ("/dev/stdout", "JSON")
    assert "defaultProviders" not in config  # a metrics provider would add istio.stats, which upstream Envoy lacks


def test_istiods_refusal_is_placed_at_the_object_whose_file_it_names() -> None:
    vs, = load_objects(load_documents("apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
                                      "metadata: {name: reviews}\nspec: {hosts: [reviews], http: [{route: "
                                      "[{destination: {host: reviews}}]}]}\n", "cases/x.yaml"))
    name = plane._file_name(vs)
    logged = (f"2026-12-06T21:04:09.1Z\twarn\tFailed to parse /w/istiod/config/{name}: configuration is invalid: "
              "2 errors occurred:\n\t* attempts cannot be negative\n\t* \"x\" is not a valid retryOn policy\n\n"
              "2026-12-06T21:04:09.2Z\twarn\tunable to reload file configuration /w/istiod/config: ...\n")
    issue, = plane._reload_issues(logged, {name: vs})
    assert (issue.file, issue.line, issue.obj) == ("cases/x.yaml", 1, "VirtualService/reviews")
    assert issue.message == ("istiod refused it: configuration is invalid: 2 errors occurred; attempts cannot be "
                             "negative; \"x\" is not a valid retryOn policy; nothing was applied")


def test_push_versions_are_istiods_nonces_without_their_uuid() -> None:
    assert plane._push_version("2026-12-06T21:04:09Z/6e2807dc8-1e81-4d90-a405-44ebbe69eb45") == "2026-12-06T21:04:09Z/6"
    assert plane._push_version(None) is None and plane._push_version("") is None


def test_istiod_keeps_its_endpoint_pushes_debounced() -> None:
    """Off, an endpoints-only push ran beside the debounced one and could install an older push context,
    so that a sync never completed (process.py; tests/integration/test_istiod_plane.py
    ::test_istiod_makes_one_push_at_a_time shows it on real istiod)."""
    assert ISTIOD_ENV.get("PILOT_ENABLE_EDS_DEBOUNCE", "true") == "true"


def test_the_last_push_istiod_logged(tmp_path: Path) -> None:
    log = tmp_path / "istiod.log"
    process = IstiodProcess(tmp_path / "pilot-discovery", tmp_path, tmp_path / "mesh.yaml", log)
    assert process.last_push_version() is None
    log.write_text("2026-12-07T03:45:14.841531Z\tinfo\tads\tXDS: Pushing Services:3 ConnectedEndpoints:2 "
                   "Version:2026-12-07T03:45:14Z/50\n"
                   "2026-12-07T03:45:14.841626Z\tinfo\tads\tXDS: Pushing Services:3 ConnectedEndpoints:2 "
                   "Version:2026-12-07T03:45:14Z/52\n"
                   "2026-12-07T03:45:14.842716Z\tinfo\tads\tCDS: PUSH for node:client-0.default resources:8\n")
    assert process.last_push_version() == "2026-12-07T03:45:14Z/52"


def test_a_timeout_says_which_push_each_proxy_acked(tmp_path: Path) -> None:
    """What tells a stale push context (every proxy ACKed istiod's last push, which lacks the sentinels)
    from a push that never arrived."""
    class Istiod:
        def syncz(self) -> list[dict[str, Any]]:
            nonce = "2026-12-07T03:45:14Z/52e2807dc8-1e81-4d90-a405-44ebbe69eb45"
            return [{"proxy": "client-0.default", "resources": {
                "type.googleapis.com/envoy.config.route.v3.RouteConfiguration": {"sent": nonce, "acked": nonce},
                "type.googleapis.com/envoy.config.cluster.v3.Cluster": {"sent": nonce}}}]

        def last_push_version(self) -> str:
            return "2026-12-07T03:45:14Z/52"

    istiod_plane = plane.IstiodPlane(None, 60.0)  # type: ignore[arg-type]
    istiod_plane._istiod = Istiod()  # type: ignore[assignment]
    client = DEFAULT_TOPOLOGY.clients[0]
    istiod_plane._proxies["client"] = Proxy("client", "127.9.8.10", client.namespace, client.labels, router=False)
    assert istiod_plane._pushes_acked(["client"]) == (
        "istiod's last push: 2026-12-07T03:45:14Z/52; client ACKed CDS none, RDS 2026-12-07T03:45:14Z/52")


def test_a_loopback_block_in_use_is_not_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    class Scripted(random.Random):
        """Draws 127.5.5 first (in use), then 127.6.6."""

        def __init__(self) -> None:
            super().__init__(0)
            self.values = iter([5, 5, 6, 6])

        def randint(self, a: int, b: int) -> int:
            return next(self.values)

    monkeypatch.setattr(plane, "_listening_prefixes", lambda: {"127.5.5"})
    assert plane.free_loopback_block(Scripted()) == "127.6.6"
