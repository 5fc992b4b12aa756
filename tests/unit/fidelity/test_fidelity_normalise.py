"""harness.mesh.local.fidelity on small hand-written config_dumps: what is a difference and what is not."""

from __future__ import annotations

import copy
from typing import Any

from harness.mesh.local.fidelity import ABSENT, Difference, accepted, differences

CLUSTER_V1 = "outbound|9080|v1|reviews.default.svc.cluster.local"
CLUSTER_V2 = "outbound|9080|v2|reviews.default.svc.cluster.local"
SENTINEL = "outbound|29417|v7|istio-system.sync.mesh-harness.internal"
VHOST = "reviews.default.svc.cluster.local:9080"


def cluster(name: str, **fields: Any) -> dict[str, Any]:
    return {"cluster": {"@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster", "name": name, "type": "EDS",
                        "lb_policy": "LEAST_REQUEST", "connect_timeout": "10s", **fields},
            "version_info": "1", "last_updated": "2026-01-01T00:00:00Z"}


def route(**fields: Any) -> dict[str, Any]:
    return {"match": {"prefix": "/"},
            "route": {"cluster": CLUSTER_V1, "timeout": "0s",
                      "retry_policy": {"retry_on": "connect-failure,refused-stream", "num_retries": 2}},
            **fields}


def listener(name: str, route_config: str) -> dict[str, Any]:
    hcm = {"@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
                    "HttpConnectionManager",
           "stat_prefix": f"outbound_{name}",
           "rds": {"route_config_name": route_config, "config_source": {"ads": {}}},
           "http_filters": [{"name": "envoy.filters.http.fault"}, {"name": "envoy.filters.http.router"}]}
    return {"name": name, "active_state": {"version_info": "3", "listener": {
        "name": name, "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                        "typed_config": hcm}]}]}}}


def dump(*, clusters: list[dict[str, Any]] | None = None, routes: list[dict[str, Any]] | None = None,
         domains: list[str] | None = None, listener_name: str = "0.0.0.0_9080",
         endpoints: dict[str, list[int]] | None = None, extra_vhosts: list[dict[str, Any]] | None = None,
         route_config_name: str = "9080") -> dict[str, Any]:
    vhosts = [{"name": VHOST, "domains": domains or ["reviews", "reviews.default.svc.cluster.local"],
               "routes": routes if routes is not None else [route()]}, *(extra_vhosts or [])]
    return {"configs": [
        {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump", "version_info": "1",
         "dynamic_active_clusters": clusters if clusters is not None else [cluster(CLUSTER_V1), cluster(CLUSTER_V2)]},
        {"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
         "dynamic_listeners": [listener(listener_name, route_config_name)]},
        {"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump", "dynamic_route_configs": [
            {"version_info": "1", "route_config": {"name": route_config_name, "virtual_hosts": vhosts}}]},
        {"@type": "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump", "dynamic_endpoint_configs": [
            {"endpoint_config": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": p}}}}
                for p in ports]}]}}
            for name, ports in (endpoints or {}).items()]},
    ]}


def ids(found: list[Difference]) -> list[str]:
    return [d.id for d in found]


def test_identical_dumps_have_no_difference() -> None:
    assert differences(dump(), dump()) == []


def test_a_retry_policy_difference_is_reported_with_both_values() -> None:
    other = route()
    other["route"]["retry_policy"]["retry_on"] = "5xx"
    found = differences(dump(), dump(routes=[other]))
    assert found == [Difference(f"route:9080/{VHOST}/0 route.retry_policy.retry_on", "connect-failure,refused-stream",
                                "5xx")]


def test_a_field_on_one_side_only_is_reported_as_absent_on_the_other() -> None:
    found = differences(dump(), dump(routes=[route(typed_per_filter_config={"envoy.filters.http.fault": {"x": 1}})]))
    assert ids(found) == [f"route:9080/{VHOST}/0 typed_per_filter_config"]
    assert found[0].builtin == ABSENT


def test_reordering_clusters_is_not_a_difference() -> None:
    assert differences(dump(clusters=[cluster(CLUSTER_V1), cluster(CLUSTER_V2)]),
                       dump(clusters=[cluster(CLUSTER_V2), cluster(CLUSTER_V1)])) == []


def test_reordering_domains_is_not_a_difference_but_reordering_routes_is() -> None:
    assert differences(dump(domains=["a", "b"]), dump(domains=["b", "a"])) == []
    first, second = route(name="first"), route(name="second", match={"prefix": "/v2"})
    found = differences(dump(routes=[first, second]), dump(routes=[second, first]))
    assert {d.id.split(" ")[0] for d in found} == {f"route:9080/{VHOST}/0", f"route:9080/{VHOST}/1"}


def test_weighted_clusters_compare_by_name_not_position() -> None:
    def weighted(*pairs: tuple[str, int]) -> dict[str, Any]:
        return route(route={"weighted_clusters": {"clusters": [{"name": n, "weight": w} for n, w in pairs]}})
    assert differences(dump(routes=[weighted((CLUSTER_V1, 90), (CLUSTER_V2, 10))]),
                       dump(routes=[weighted((CLUSTER_V2, 10), (CLUSTER_V1, 90))])) == []
    found = differences(dump(routes=[weighted((CLUSTER_V1, 90), (CLUSTER_V2, 10))]),
                        dump(routes=[weighted((CLUSTER_V1, 80), (CLUSTER_V2, 20))]))
    assert ids(found) == [f"route:9080/{VHOST}/0 route.weighted_clusters.clusters[{CLUSTER_V1}].weight",
                          f"route:9080/{VHOST}/0 route.weighted_clusters.clusters[{CLUSTER_V2}].weight"]


def test_the_config_version_stamp_versions_and_istio_metadata_are_not_differences() -> None:
    stamped = route(response_headers_to_add=[{"append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                                              "header": {"key": "x-mesh-harness-config-version", "value": "8"}}])
    with_metadata = route(metadata={"filter_metadata": {"istio": {"config": "/apis/.../virtual-service/reviews"}}})
    builtin = dump(routes=[stamped])
    istiod = dump(routes=[with_metadata])
    for config in istiod["configs"]:
        for entry in config.get("dynamic_active_clusters", []):
            entry["version_info"] = "2026-01-01T00:00:00Z/9"
            entry["cluster"]["metadata"] = {"filter_metadata": {"istio": {"services": []}}}
    assert differences(builtin, istiod) == []


def test_other_response_headers_stay_compared() -> None:
    added = route(response_headers_to_add=[{"header": {"key": "x-mesh-harness-config-version", "value": "8"}},
                                           {"header": {"key": "x-policy", "value": "v1"}}])
    found = differences(dump(routes=[added]), dump())
    assert ids(found) == [f"route:9080/{VHOST}/0 response_headers_to_add"]


def test_listener_names_addresses_and_gateway_route_names_are_mapped_to_the_port() -> None:
    builtin = dump(listener_name="0.0.0.0_80", route_config_name="http.80")
    istiod = dump(listener_name="127.3.4.2_80", route_config_name="http.80.127.3.4.2")
    istiod["configs"][1]["dynamic_listeners"][0]["active_state"]["listener"]["address"] = {
        "socket_address": {"address": "127.3.4.2", "port_value": 80}}
    assert differences(builtin, istiod) == []


def test_the_sentinel_resources_are_left_out() -> None:
    istiod = dump(clusters=[cluster(CLUSTER_V1), cluster(CLUSTER_V2), cluster(SENTINEL)],
                  extra_vhosts=[{"name": "istio-system.sync.mesh-harness.internal:9080",
                                 "domains": ["istio-system.sync.mesh-harness.internal"], "routes": [route(name="v7")]}],
                  endpoints={SENTINEL: []})
    istiod["configs"][1]["dynamic_listeners"].append(listener("127.3.4.10_29417", "29417"))
    assert differences(dump(), istiod) == []


def test_empty_defaults_equal_absent_ones_but_a_set_panic_threshold_does_not() -> None:
    assert differences(dump(clusters=[cluster(CLUSTER_V1, common_lb_config={}), cluster(CLUSTER_V2)]),
                       dump(clusters=[cluster(CLUSTER_V1), cluster(CLUSTER_V2)])) == []
    found = differences(dump(clusters=[cluster(CLUSTER_V1), cluster(CLUSTER_V2)]),
                        dump(clusters=[cluster(CLUSTER_V1, common_lb_config={"healthy_panic_threshold": {}}),
                                       cluster(CLUSTER_V2)]))
    assert ids(found) == [f"cluster:{CLUSTER_V1} common_lb_config"]


def test_endpoints_compare_by_instance_not_by_the_port_it_bound() -> None:
    builtin = dump(endpoints={CLUSTER_V1: [41000, 41001]})
    istiod = dump(endpoints={CLUSTER_V1: [52001, 52000]})
    names_b = {"127.0.0.1:41000": "reviews-v1-0/http", "127.0.0.1:41001": "reviews-v1-1/http"}
    names_i = {"127.0.0.1:52000": "reviews-v1-0/http", "127.0.0.1:52001": "reviews-v1-1/http"}
    assert differences(builtin, istiod, builtin_endpoints=names_b, istiod_endpoints=names_i) == []
    fewer = dump(endpoints={CLUSTER_V1: [52000]})
    found = differences(builtin, fewer, builtin_endpoints=names_b, istiod_endpoints=names_i)
    assert ids(found) == [f"endpoints:{CLUSTER_V1} [reviews-v1-1/http]"]


def test_http_filter_order_matters_and_telemetry_filters_do_not() -> None:
    istiod = copy.deepcopy(dump())
    hcm = istiod["configs"][1]["dynamic_listeners"][0]["active_state"]["listener"]["filter_chains"][0]["filters"][0]
    hcm["typed_config"]["http_filters"].insert(0, {"name": "envoy.filters.http.grpc_stats"})
    assert differences(dump(), istiod) == []
    hcm["typed_config"]["http_filters"].reverse()
    assert "listener:9080 http_filter_order" in ids(differences(dump(), istiod))


def test_a_draining_listener_and_its_route_config_are_not_compared() -> None:
    istiod = dump()
    istiod["configs"][1]["dynamic_listeners"].append({"name": "0.0.0.0_7070", "draining_state": {}})
    istiod["configs"][2]["dynamic_route_configs"].append({"route_config": {"name": "7070", "virtual_hosts": []}})
    assert differences(dump(), istiod) == []


def test_accepted_patterns_match_ids() -> None:
    found = Difference("client:cluster:BlackHoleCluster", ABSENT, {})
    assert accepted(found, {"*:cluster:BlackHoleCluster": "unused"}) == "unused"
    assert accepted(found, {"*:cluster:PassthroughCluster": "unused"}) is None
