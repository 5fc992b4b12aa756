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
    entry = sentinel_service_entry("ns", 7, {})
    assert entry["spec"]["exportTo"] == ["."]
    assert entry["spec"]["hosts"] == vs["spec"]["hosts"] == ["ns.sync.mesh-harness.internal",
                                                            "v7.ns.sync.mesh-harness.internal"]


def test_local_istiod_sentinels_reach_every_namespace_and_the_gateway() -> None:
    vs, dr = sentinels("istio-system", 7, {}, export_to=("*",), gateways=(f"istio-system/{SYNC_NAME}",))
    assert vs["spec"]["exportTo"] == ["*"] and dr["spec"]["exportTo"] == ["*"]
    assert vs["spec"]["gateways"] == ["mesh", f"istio-system/{SYNC_NAME}"]  # sidecars keep it too
    gateway = sentinel_gateway("istio-system", 7, {"istio": "ingressgateway"}, "127.9.8.2")
    server, = gateway["spec"]["servers"]
    assert server["port"]["number"] == SYNC_PORT and server["bind"] == "127.9.8.2"
    assert server["hosts"] == vs["spec"]["hosts"][1:]  # the host of version 7 only: the Gateway of 7 is needed
    assert "bind" not in sentinel_gateway("ns", 7, {"istio": "ingressgateway"})["spec"]["servers"][0]


def test_sync_state_reads_a_sidecars_and_a_gateways_virtual_host() -> None:
    host = "v7.istio-system.sync.mesh-harness.internal"
    cluster = f"outbound|{SYNC_PORT}|v7|istio-system.sync.mesh-harness.internal"
    assert sync_state(dump([host, f"{host}."], "v7", cluster), "istio-system", 7).synced  # a sidecar's domains
    assert sync_state(dump([host, f"{host}:*"], "v7", cluster), "istio-system", 7).synced  # a gateway's
    assert not sync_state(dump([host], "v6", cluster), "istio-system", 7).has_route  # an older apply's route
    assert not sync_state(dump(["other.example"], "v7", cluster), "istio-system", 7).has_route
    # the VirtualService of 7 seen through the plain host only: the ServiceEntry (or Gateway) of 7 is not in yet
    plain = "istio-system.sync.mesh-harness.internal"
    assert not sync_state(dump([plain, f"{plain}:*"], "v7", cluster), "istio-system", 7).has_route
