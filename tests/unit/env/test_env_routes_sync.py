"""Route tables from a config_dump in words, and xDS sync states in istioctl's words."""

from __future__ import annotations

from typing import Any

from harness.env.sync import sync_row, sync_rows
from harness.mesh.local import typeurls
from harness.mesh.local.xds import TypeStatus
from harness.report.routes import (
    describe_action,
    describe_match,
    known_hosts,
    percent,
    route_configs,
    service_routes,
)

V1 = "outbound|9080|v1|reviews.default.svc.cluster.local"
V2 = "outbound|9080|v2|reviews.default.svc.cluster.local"


def dump(*routes: dict[str, Any]) -> dict[str, Any]:
    vhosts = [{"name": "reviews.default.svc.cluster.local:9080", "domains": ["reviews.default.svc.cluster.local", "reviews"],
               "routes": list(routes)},
              {"name": "block_all", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "direct_response": {"status": 502}}]}]
    return {"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump"},
                        {"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump", "dynamic_route_configs": [
                            {"version_info": "5", "route_config": {"name": "9080", "virtual_hosts": vhosts}}]}]}


def test_env_routes_weighted_split_with_policies() -> None:
    route = {
        "match": {"prefix": "/", "headers": [{"name": "end-user", "string_match": {"exact": "jason"}}]},
        "route": {"weighted_clusters": {"clusters": [{"name": V1, "weight": 90}, {"name": V2, "weight": 10}]},
                  "timeout": "2s", "retry_policy": {"num_retries": 3, "retry_on": "5xx", "per_try_timeout": "0.5s"},
                  "request_mirror_policies": [{"cluster": V2, "runtime_fraction": {"default_value": {"numerator": 250000,
                                                                                                    "denominator": "MILLION"}}}]},
        "typed_per_filter_config": {"envoy.filters.http.fault": {"abort": {"http_status": 503, "percentage": {"numerator": 50}}}},
    }
    configs = route_configs(dump(route))
    [row] = service_routes(configs, "reviews")
    assert (row.route_config, row.version, row.index) == ("9080", "5", 0)
    assert row.match == 'prefix /, header end-user exact "jason"'
    assert row.action == "reviews v1 90%, reviews v2 10%"
    assert row.policies == ("timeout 2s", "retries 3 on 5xx, 0.5s per try", "mirror 25% to reviews v2",
                            "fault abort 503 for 50%")
    assert service_routes(configs, "reviews.default.svc.cluster.local") == [row]
    assert service_routes(configs, "ratings") == []
    assert known_hosts(configs) == ["reviews.default.svc.cluster.local"]


def test_env_routes_matches_and_actions_in_words() -> None:
    assert describe_match({}) == "everything"
    assert describe_match({"safe_regex": {"regex": "/v[0-9]+"}, "case_sensitive": False,
                           "query_parameters": [{"name": "q", "string_match": {"prefix": "a"}}],
                           "headers": [{"name": "x", "present_match": True, "invert_match": True}]}) == (
        'path regex "/v[0-9]+", ignoring case, header x not present, query q prefix "a"')
    assert describe_action({"route": {"cluster": "outbound|9080||reviews.default.svc.cluster.local"}}) == "reviews (all versions)"
    assert describe_action({"direct_response": {"status": 418}}) == "respond 418"
    assert describe_action({"redirect": {"host_redirect": "x.com", "path_redirect": "/y"}}) == (
        "redirect MOVED_PERMANENTLY to x.com/y")
    assert percent({"numerator": 1}) == "1%" and percent({"numerator": 5, "denominator": "TEN_THOUSAND"}) == "0.05%"


def status(**kw: Any) -> TypeStatus:
    return TypeStatus(**kw)


def test_env_sync_states() -> None:
    r = typeurls.ROUTE
    assert sync_row("n", r, None, 3).state == "NOT SENT"
    assert sync_row("n", r, status(sent_version="3", acked_version="3"), 3).state == "SYNCED"
    stale = sync_row("n", r, status(sent_version="3", acked_version="2"), 3)
    assert (stale.state, stale.note) == ("STALE", "version 3 sent, not ACKed yet")
    behind = sync_row("n", r, status(sent_version="2", acked_version="2"), 3)
    assert (behind.state, behind.note) == ("STALE", "mesh is at version 3, not pushed to this node yet")
    nack = sync_row("n", r, status(sent_version="3", acked_version="2", nack_version="3", nack_detail="bad regex"), 3)
    assert (nack.type, nack.state, nack.note) == ("RDS", "NACK", "NACK of version 3: bad regex")
    healed = sync_row("n", r, status(sent_version="4", acked_version="4", nack_version="3", nack_detail="bad regex"), 4)
    assert (healed.state, healed.note) == ("SYNCED", "earlier NACK of version 3: bad regex")
    assert [row.type for row in sync_rows("n", {}, 1)] == ["CDS", "EDS", "LDS", "RDS"]
