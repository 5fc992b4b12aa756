"""Sentinels for meshes where istiod configures the sidecars (pure): the objects, and reading a config_dump.

The kube mesh keeps them private to a namespace; the local istiod plane (one istiod per mesh) exports them
to every namespace and, when a gateway runs, binds the VirtualService to a sentinel Gateway server too, so
that the gateway's route table (domains ``host`` and ``host:*``) carries the sentinel route.
"""

from __future__ import annotations

from typing import Any

from harness.mesh.sentinels import SYNC_NAME, SYNC_PORT, sentinel_gateway, sentinel_service_entry, sentinels, sync_state


def dump(domains: list[str], route: str, cluster: str) -> dict[str, Any]:
    return {"configs": [
        {"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump", "dynamic_route_configs": [
            {"route_config": {"name": "http.29417", "virtual_hosts": [{"domains": domains, "routes": [{"name": route}]}]}}]},
        {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump", "dynamic_active_clusters": [
            {"cluster": {"name": cluster}}]},
    ]}


def test_kube_sentinels_stay_in_their_namespace() -> None:
    vs, dr = sentinels("ns", 7, {})
    assert vs["spec"]["exportTo"] == ["."] and dr["spec"]["exportTo"] == ["."] and "gateways" not in vs["spec"]
    assert vs["spec"]["http"][0]["name"] == "v7" and dr["spec"]["subsets"][0]["name"] == "v7"
    assert sentinel_service_entry("ns", {})["spec"]["exportTo"] == ["."]


def test_local_istiod_sentinels_reach_every_namespace_and_the_gateway() -> None:
    vs, dr = sentinels("istio-system", 7, {}, export_to=("*",), gateways=(f"istio-system/{SYNC_NAME}",))
    assert vs["spec"]["exportTo"] == ["*"] and dr["spec"]["exportTo"] == ["*"]
    assert vs["spec"]["gateways"] == ["mesh", f"istio-system/{SYNC_NAME}"]  # sidecars keep it too
    gateway = sentinel_gateway("istio-system", {"istio": "ingressgateway"}, "127.9.8.2")
    server, = gateway["spec"]["servers"]
    assert server["port"]["number"] == SYNC_PORT and server["bind"] == "127.9.8.2"
    assert server["hosts"] == vs["spec"]["hosts"]


def test_sync_state_reads_a_sidecars_and_a_gateways_virtual_host() -> None:
    host, cluster = "istio-system.sync.mesh-harness.internal", f"outbound|{SYNC_PORT}|v7|istio-system.sync.mesh-harness.internal"
    assert sync_state(dump([host, f"{host}."], "v7", cluster), "istio-system", 7).synced  # a sidecar's domains
    assert sync_state(dump([host, f"{host}:*"], "v7", cluster), "istio-system", 7).synced  # a gateway's
    assert not sync_state(dump([host], "v6", cluster), "istio-system", 7).has_route  # an older apply's route
    assert not sync_state(dump(["other.example"], "v7", cluster), "istio-system", 7).has_route
