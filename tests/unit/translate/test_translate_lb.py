"""loadBalancer -> lb_policy and LB config; consistent hash -> route hash_policy, with istiod's lookup order."""

from __future__ import annotations

from typing import Any

import pytest

from harness.istio.model import (
    ConsistentHashLB,
    DestinationRule,
    HTTPRouteDestination,
    LoadBalancerSettings,
)
from harness.mesh.local.translate.lb import (
    default_route_hash_policies,
    hash_policy,
    route_hash_policies,
    translate_load_balancer,
)
from harness.mesh.local.translate.traffic_policy import DestinationRules

FQDN = "reviews.default.svc.cluster.local"
ATTRIBUTES = [{"name": "a"}, {"name": "b", "value": "v"}]
SLOW_START = {
    "slow_start_window": "30s",
    "aggression": {"default_value": 1.0, "runtime_key": "("},
    "min_weight_percent": {"value": 10.0},
}


def lb(spec: dict[str, Any]) -> dict[str, Any]:
    return translate_load_balancer(LoadBalancerSettings.model_validate(spec))


@pytest.mark.parametrize(
    ("simple", "policy"),
    [
        ("UNSPECIFIED", "LEAST_REQUEST"),
        ("LEAST_REQUEST", "LEAST_REQUEST"),
        ("LEAST_CONN", "LEAST_REQUEST"),
        ("ROUND_ROBIN", "ROUND_ROBIN"),
        ("RANDOM", "RANDOM"),
    ],
)
def test_translate_lb_simple(simple: str, policy: str) -> None:
    assert lb({"simple": simple}) == {"lb_policy": policy}


def test_translate_lb_default_is_least_request() -> None:
    assert translate_load_balancer(None) == {"lb_policy": "LEAST_REQUEST"}
    assert lb({"localityLbSetting": {"enabled": False}}) == {"lb_policy": "LEAST_REQUEST"}


def test_translate_lb_warmup() -> None:
    assert lb({"warmup": {"duration": "30s"}}) == {
        "lb_policy": "LEAST_REQUEST",
        "least_request_lb_config": {"slow_start_config": SLOW_START},
    }
    custom = lb({"simple": "ROUND_ROBIN", "warmup": {"duration": "30s", "aggression": 2, "minimumPercent": 0}})
    assert custom["round_robin_lb_config"]["slow_start_config"]["aggression"]["default_value"] == 2
    assert custom["round_robin_lb_config"]["slow_start_config"]["min_weight_percent"] == {"value": 0}
    assert lb({"simple": "RANDOM", "warmup": {"duration": "30s"}}) == {"lb_policy": "RANDOM"}
    assert lb({"warmupDurationSecs": "5s"}) == {
        "lb_policy": "LEAST_REQUEST",
        "least_request_lb_config": {"slow_start_config": {"slow_start_window": "5s"}},
    }


@pytest.mark.parametrize(
    ("consistent_hash", "want"),
    [
        ({"httpHeaderName": "x"}, {"lb_policy": "RING_HASH", "ring_hash_lb_config": {"minimum_ring_size": 1024}}),
        (
            {"httpHeaderName": "x", "minimumRingSize": 64},
            {"lb_policy": "RING_HASH", "ring_hash_lb_config": {"minimum_ring_size": 64}},
        ),
        (
            {"httpHeaderName": "x", "ringHash": {"minimumRingSize": 2048}},
            {"lb_policy": "RING_HASH", "ring_hash_lb_config": {"minimum_ring_size": 2048}},
        ),
        ({"httpHeaderName": "x", "ringHash": {}}, {"lb_policy": "RING_HASH"}),
        (
            {"httpHeaderName": "x", "maglev": {"tableSize": 65537}},
            {"lb_policy": "MAGLEV", "maglev_lb_config": {"table_size": 65537}},
        ),
        ({"httpHeaderName": "x", "maglev": {}}, {"lb_policy": "MAGLEV"}),
    ],
)
def test_translate_lb_consistent_hash_cluster(consistent_hash: dict[str, Any], want: dict[str, Any]) -> None:
    assert lb({"consistentHash": consistent_hash}) == want


def test_translate_lb_ring_config_replaces_slow_start_but_a_zero_size_keeps_it() -> None:
    warm = {"warmup": {"duration": "30s"}}
    assert "least_request_lb_config" not in lb({**warm, "consistentHash": {"httpHeaderName": "x"}})
    kept = lb({**warm, "consistentHash": {"httpHeaderName": "x", "maglev": {}}})
    assert kept == {"lb_policy": "MAGLEV", "least_request_lb_config": {"slow_start_config": SLOW_START}}


@pytest.mark.parametrize(
    ("consistent_hash", "want"),
    [
        ({"httpHeaderName": "x-user"}, {"header": {"header_name": "x-user"}}),
        ({"httpCookie": {"name": "c"}}, {"cookie": {"name": "c"}}),
        (
            {"httpCookie": {"name": "c", "path": "/p", "ttl": "0s", "attributes": ATTRIBUTES}},
            {"cookie": {"name": "c", "path": "/p", "ttl": "0s", "attributes": ATTRIBUTES}},
        ),
        ({"useSourceIp": True}, {"connection_properties": {"source_ip": True}}),
        ({"httpQueryParameterName": "u"}, {"query_parameter": {"name": "u"}}),
        ({"ringHash": {"minimumRingSize": 8}}, None),
    ],
)
def test_translate_lb_hash_policy(consistent_hash: dict[str, Any], want: dict[str, Any] | None) -> None:
    assert hash_policy(ConsistentHashLB.model_validate(consistent_hash)) == want


def _header(name: str) -> dict[str, Any]:
    return {"loadBalancer": {"consistentHash": {"httpHeaderName": name}}}


def _port(number: int, policy: dict[str, Any]) -> dict[str, Any]:
    return {"port": {"number": number}, **policy}


RULE = DestinationRule.model_validate(
    {
        "apiVersion": "networking.istio.io/v1",
        "metadata": {"name": "reviews"},
        "spec": {
            "host": "reviews",
            "trafficPolicy": {**_header("top"), "portLevelSettings": [_port(9080, _header("top-9080"))]},
            "subsets": [
                {"name": "plain", "labels": {"version": "v1"}},
                {"name": "own", "trafficPolicy": _header("subset")},
                {
                    "name": "own-port",
                    "trafficPolicy": {**_header("subset"), "portLevelSettings": [_port(9080, _header("subset-9080"))]},
                },
            ],
        },
    }
)
RULES = DestinationRules([RULE], "default")


def dest(
    subset: str | None = None, port: int | None = None, weight: int = 0, host: str = "reviews"
) -> HTTPRouteDestination:
    d: dict[str, Any] = {"host": host}
    if subset:
        d["subset"] = subset
    if port:
        d["port"] = {"number": port}
    return HTTPRouteDestination.model_validate({"destination": d, "weight": weight})


def headers(policies: list[dict[str, Any]]) -> list[str]:
    return [p["header"]["header_name"] for p in policies]


@pytest.mark.parametrize(
    ("destination", "want"),
    [
        (dest(), "top"),
        (dest(port=9080), "top-9080"),
        (dest(port=7070), "top"),
        (dest("plain", 9080), "top-9080"),
        (dest("own"), "subset"),
        (dest("own", 9080), "subset"),
        (dest("own-port"), "subset"),
        (dest("own-port", 9080), "subset-9080"),
        (dest("unknown-subset"), "top"),
    ],
)
def test_translate_lb_destination_hash_lookup_order(destination: HTTPRouteDestination, want: str) -> None:
    assert headers(route_hash_policies([destination], "default", RULES)) == [want]


def test_translate_lb_route_hash_per_destination_skipping_weight_0() -> None:
    route = [dest("own", weight=60), dest("plain", weight=0), dest(weight=40)]
    assert headers(route_hash_policies(route, "default", RULES)) == ["subset", "top"]
    assert headers(route_hash_policies([dest("own", weight=0)], "default", RULES)) == ["subset"]


def test_translate_lb_route_hash_needs_a_dr_for_the_destination_host() -> None:
    assert route_hash_policies([dest(host="ratings")], "default", RULES) == []
    assert route_hash_policies([dest(host="reviews.default.svc.cluster.local")], "other", RULES) != []
    assert route_hash_policies([dest()], "other", RULES) == []  # reviews.other: no such DR


def test_translate_lb_default_route_hash_uses_top_level_and_port_level_only() -> None:
    assert headers(default_route_hash_policies(FQDN, 9080, RULES)) == ["top-9080"]
    assert headers(default_route_hash_policies(FQDN, 7070, RULES)) == ["top"]
    assert default_route_hash_policies("ratings.default.svc.cluster.local", 9080, RULES) == []


def test_translate_lb_port_level_entry_without_hash_keeps_the_top_level_hash() -> None:
    spec = {**_header("top"), "portLevelSettings": [_port(9080, {"loadBalancer": {"simple": "ROUND_ROBIN"}})]}
    meta = {"name": "r"}
    rule = DestinationRule.model_validate(
        {"apiVersion": "networking.istio.io/v1", "metadata": meta, "spec": {"host": "reviews", "trafficPolicy": spec}}
    )
    rules = DestinationRules([rule], "default")
    assert headers(default_route_hash_policies(FQDN, 9080, rules)) == ["top"]
    assert headers(route_hash_policies([dest(port=9080)], "default", rules)) == ["top"]
