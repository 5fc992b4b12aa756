"""The pure readers of the kube mesh: config_dump sync state, pod log increments, pod readiness, endpoints,
access-log lines, API paths and error bodies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import MeshError
from harness.mesh.kube import image
from harness.mesh.kube.api import _reason, resource_path
from harness.mesh.kube.mesh import access_log_entries, envoy_version, healthy_hosts, rollout_problems
from harness.mesh.kube.podlog import LogCursor, new_lines, parse_timestamp
from harness.mesh.kube.pods import is_ready
from harness.mesh.kube.session import node_platform, readiness_problems
from harness.mesh.sentinels import sync_cluster, sync_state
from tests.kube.recorded import recording


def dump(name: str, version: int) -> dict[str, object]:
    return json.loads(json.dumps(recording(name)).replace("__VERSION__", str(version)).replace("__NAMESPACE__", "ns"))


def test_kube_sync_state_reads_the_sentinel_and_rejections() -> None:
    assert sync_state(dump("config_dump.json", 4), "ns", 4).synced
    older = sync_state(dump("config_dump.json", 3), "ns", 4)
    assert not older.has_route and not older.has_cluster and not older.rejected
    assert not sync_state(dump("config_dump.json", 4), "other", 4).synced
    nacked = sync_state(dump("config_dump_nacked.json", 4), "ns", 4)
    assert nacked.rejected == ("Routes 9080: Proto constraint validation failed (RouteConfigurationValidationError."
                               "VirtualHosts[0]: embedded message failed validation)",)
    assert sync_cluster("ns", 4) == "outbound|29417|v4|ns.sync.mesh-harness.internal"


def test_kube_pod_log_increments() -> None:
    text = ("2026-05-20T10:00:10.5Z a\n2026-05-20T10:00:10.5Z b\n2026-05-20T10:00:10.51Z c\n")
    lines, cursor = new_lines(text, LogCursor())
    assert lines == ["a", "b", "c"] and cursor == LogCursor((1779271210, 510_000_000), 1)
    assert cursor.since_time() == "2026-05-20T10:00:10Z"
    more = text + "2026-05-20T10:00:10.51Z d\n2026-05-20T10:00:11Z e\nnot timestamped\n"
    lines, cursor = new_lines(more, cursor)
    assert lines == ["d", "e"]
    assert new_lines(more, cursor)[0] == []
    assert parse_timestamp("2026-05-20T10:00:10.123456789Z") == (1779271210, 123456789)
    assert parse_timestamp("2026-05-20T10:00:10.1Z") > parse_timestamp("2026-05-20T10:00:10.09Z")
    assert LogCursor().since_time() is None


def test_kube_rollout_problems_and_readiness() -> None:
    pods = recording("pods_running.json")["items"]
    wanted = {"reviews-v1-0": ("default", "reviews-v1-0"), "reviews-v2-0": ("default", "reviews-v2-0"),
              "client": ("default", "client")}
    assert all(is_ready(p) for p in pods)
    assert rollout_problems(wanted, {"default": pods}) == []
    assert rollout_problems({**wanted, "reviews-v3-0": ("default", "reviews-v3-0")}, {"default": pods}) == [
        "reviews-v3-0: no pod"]
    assert rollout_problems({k: v for k, v in wanted.items() if k != "client"}, {"default": pods}) == [
        "default/client: removed, 1 pod(s) still terminating"]
    deleting = json.loads(json.dumps(pods[0]))
    deleting["metadata"]["deletionTimestamp"] = "2026-05-20T10:01:00Z"
    assert not is_ready(deleting)
    assert rollout_problems(wanted, {"default": [deleting, *pods]})[0].startswith(
        "reviews-v1-0: reviews-v1-0-7c9d8f6b5-x2k4q deleting, reviews-v1-0-7c9d8f6b5-x2k4q Running")


def test_kube_endpoints_access_log_and_server_info() -> None:
    hosts = healthy_hosts(recording("clusters.json"))
    assert hosts["outbound|9080||reviews.default.svc.cluster.local"] == 2
    ejected = {"cluster_statuses": [{"name": "c", "host_statuses": [
        {"health_status": {"eds_health_status": "HEALTHY", "failed_outlier_check": True}}, {"health_status": {}}]}]}
    assert healthy_hosts(ejected) == {"c": 1}
    lines = [line.partition(" ")[2] for line in recording("istio_proxy_log.txt").splitlines()]
    entries = access_log_entries(lines + ['{"not": "an access log line"}', "{broken"])
    assert [(e["request_id"], e["response_flags"]) for e in entries] == [
        ("5d0b8a1f9c2e3d4f5a6b7c8d-0", "-"), ("5d0b8a1f9c2e3d4f5a6b7c8d-1", "FI")]
    assert envoy_version(recording("server_info.json")) == "1.38.3-dev"


def test_kube_api_paths_and_errors() -> None:
    assert resource_path("v1", "Namespace", None, "mh") == "/api/v1/namespaces/mh"
    assert resource_path("apps/v1", "Deployment", "ns") == "/apis/apps/v1/namespaces/ns/deployments"
    assert resource_path("networking.istio.io/v1beta1", "ServiceEntry", "ns", "s") == (
        "/apis/networking.istio.io/v1beta1/namespaces/ns/serviceentries/s")
    assert resource_path("networking.istio.io/v1", "Gateway", "ns", "g") == (
        "/apis/networking.istio.io/v1/namespaces/ns/gateways/g")
    with pytest.raises(MeshError, match="does not manage Sidecar"):
        resource_path("networking.istio.io/v1", "Sidecar", "ns", "g")
    with pytest.raises(MeshError, match="Service/s: a namespace is required"):
        resource_path("v1", "Service", None, "s")
    assert _reason(json.dumps(recording("webhook_denied.json"))).startswith("admission webhook")
    assert _reason(b"plain text") == "plain text" and _reason(None) == ""


def test_kube_cluster_readiness_and_the_nodes_platform() -> None:
    nodes = recording("nodes.json")["items"]
    istiod = recording("istiod_deployment.json")
    assert readiness_problems(nodes, istiod) == readiness_problems(nodes, None) == []
    not_ready = [{**nodes[0], "status": {**nodes[0]["status"], "conditions": [{"type": "Ready", "status": "False"}]}}]
    starting = {**istiod, "status": {"replicas": 1}}
    assert readiness_problems(not_ready, starting) == [
        "no node is Ready (nodes: mesh-harness-control-plane)", "istio-system/istiod has no ready replica"]
    assert node_platform(nodes) == "linux/amd64"
    arm = {**nodes[0], "status": {**nodes[0]["status"], "nodeInfo": {"architecture": "arm64"}}}
    with pytest.raises(MeshError, match="nodes run linux/amd64, linux/arm64; run on a cluster of one architecture"):
        node_platform([*nodes, arm])
    assert image.image_tag("linux/arm64") == image.source_hash() + "-arm64"
    assert image.build_command("docker", "i:1", Path("/ctx"), "linux/arm64")[6:8] == ["--platform", "linux/arm64"]
