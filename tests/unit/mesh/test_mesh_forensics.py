"""Failure forensics (pure): what of a proxy's config_dump and logs concerns the failed check's host, bounded."""

from __future__ import annotations

from typing import Any

from harness.mesh.base import ReceivedRequest
from harness.mesh.forensics import LOG_LINES, MAX_CLUSTERS, MAX_ROUTES, access_line, gather, referenced_clusters

ROUTES = "type.googleapis.com/envoy.admin.v3.RoutesConfigDump"
CLUSTERS = "type.googleapis.com/envoy.admin.v3.ClustersConfigDump"
V1 = "outbound|9080|v1|reviews.default.svc.cluster.local"
V2 = "outbound|9080|v2|reviews.default.svc.cluster.local"
V3 = "outbound|9080|v3|reviews.default.svc.cluster.local"
RATINGS = "outbound|9080||ratings.default.svc.cluster.local"


def vhost(host: str, port: int, routes: list[dict[str, Any]]) -> dict[str, Any]:
    fqdn = f"{host}.default.svc.cluster.local"
    return {"name": f"{fqdn}:{port}", "domains": [fqdn, f"{fqdn}:{port}", host, f"{host}:{port}"], "routes": routes}


def config_dump(routes_9080: list[dict[str, Any]], clusters: list[str]) -> dict[str, Any]:
    return {"configs": [
        {"@type": CLUSTERS, "dynamic_active_clusters": [{"cluster": {"name": n, "type": "EDS"}} for n in clusters]},
        {"@type": ROUTES, "dynamic_route_configs": [
            {"version_info": "7", "route_config": {"name": "9080", "virtual_hosts": [
                vhost("reviews", 9080, routes_9080),
                vhost("ratings", 9080, [{"match": {"prefix": "/"}, "route": {"cluster": RATINGS}}]),
                {"name": "block_all", "domains": ["*"], "routes": []}]}},
            {"version_info": "7", "route_config": {"name": "7070", "virtual_hosts": [
                vhost("reviews", 7070, [{"match": {"prefix": "/"}, "route": {"cluster": "outbound|7070||reviews"}}])]}},
        ]},
    ]}


SPLIT = [{"match": {"prefix": "/"}, "route": {
    "weighted_clusters": {"clusters": [{"name": V1, "weight": 90}, {"name": V2, "weight": 10}]},
    "request_mirror_policies": [{"cluster": V3}]}}]


def test_forensics_keeps_the_hosts_routes_of_the_port_and_the_clusters_they_name() -> None:
    found = gather("client", "reviews", 9080, config_dump(SPLIT, [V1, V2, V3, RATINGS]), [], [])
    (config,) = found.route_configs
    assert config["version_info"] == "7" and config["route_config"]["name"] == "9080"
    assert [v["name"] for v in config["route_config"]["virtual_hosts"]] == ["reviews.default.svc.cluster.local:9080"]
    assert [c["name"] for c in found.clusters] == [V1, V2, V3]  # ratings' cluster is not the host's
    assert found.truncated == ()


def test_forensics_without_a_port_config_keeps_every_config_serving_the_host() -> None:
    found = gather("client", "reviews", 80, config_dump(SPLIT, [V1]), [], [])
    assert [c["route_config"]["name"] for c in found.route_configs] == ["7070", "9080"]
    assert gather("client", "nowhere", 9080, config_dump(SPLIT, [V1]), [], []).route_configs == ()


def test_forensics_referenced_clusters_in_order_of_mention() -> None:
    assert referenced_clusters(config_dump(SPLIT, [])["configs"][1]["dynamic_route_configs"][:1]) == [V1, V2, V3, RATINGS]


def test_forensics_is_bounded_and_says_what_it_left_out() -> None:
    many = [{"match": {"prefix": f"/{i}"}, "route": {"cluster": f"outbound|9080|s{i}|reviews"}} for i in range(100)]
    lines = [f'{{"request_id": "r{i}", "response_code": 200}}' for i in range(50)]
    received = [ReceivedRequest(f"r{i}", "reviews", "v1", "reviews-v1-0", "GET", "/", "reviews:9080", {}, float(i))
                for i in range(50)]
    found = gather("client", "reviews", 9080, config_dump(many, [f"outbound|9080|s{i}|reviews" for i in range(100)]),
                   lines, reversed(received))
    routes = found.route_configs[0]["route_config"]["virtual_hosts"][0]["routes"]
    assert len(routes) == MAX_ROUTES and len(found.clusters) == MAX_CLUSTERS
    assert found.truncated == (f"{100 - MAX_ROUTES} more routes", f"{MAX_ROUTES - MAX_CLUSTERS} more clusters")
    assert found.access_log == tuple(f"response_code=200 request_id=r{i}" for i in range(50 - LOG_LINES, 50))
    assert found.app_log[-1] == "reviews-v1-0 GET reviews:9080/ x-request-id=r49"  # the latest, in time order
    assert len(found.app_log) == LOG_LINES


def test_forensics_access_line_keeps_the_fields_worth_a_glance() -> None:
    istio = ('2026-12-07T00:00:01.123456789Z {"start_time":"2026-12-07T00:00:01Z","method":"GET","path":"/",'
             '"response_code":503,"response_flags":"UH","upstream_cluster":"outbound|9080|v3|reviews","bytes_sent":91}')
    assert access_line(istio) == ("start_time=2026-12-07T00:00:01Z method=GET path=/ response_code=503 "
                                  "response_flags=UH upstream_cluster=outbound|9080|v3|reviews")
    assert access_line("[warning] not json") == "[warning] not json"
    assert access_line("{broken") == "{broken"
