"""istiod's DestinationRule merge: which DR supplies the policy, port-level and subset replacement (no deep merge)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from harness.istio.model import DestinationRule, TrafficPolicy
from harness.mesh.local.translate.traffic_policy import (
    DestinationRules,
    Policy,
    cluster_policy,
    port_policy,
)

FQDN = "reviews.default.svc.cluster.local"
POOL_A = {"tcp": {"maxConnections": 1}}
POOL_B = {"http": {"maxRetries": 2}}
OUTLIER = {"consecutive5xxErrors": 3}
RR = {"simple": "ROUND_ROBIN"}
BUDGET = {"percent": 5}


def tp(spec: dict[str, Any]) -> TrafficPolicy:
    return TrafficPolicy.model_validate(spec)


def dr(name: str, spec: dict[str, Any], namespace: str = "default", second: int = 0) -> DestinationRule:
    stamp = datetime(2026, 1, 1, 0, 0, second, tzinfo=UTC).isoformat()
    meta = {"name": name, "namespace": namespace, "creationTimestamp": stamp}
    return DestinationRule.model_validate(
        {"apiVersion": "networking.istio.io/v1", "metadata": meta, "spec": {"host": "reviews", **spec}}
    )


def test_translate_traffic_policy_port_level_replaces_everything_for_its_port() -> None:
    top = tp(
        {
            "connectionPool": POOL_A,
            "outlierDetection": OUTLIER,
            "retryBudget": BUDGET,
            "portLevelSettings": [{"port": {"number": 9080}, "loadBalancer": RR}],
        }
    )
    assert port_policy(top, 9080) == Policy(load_balancer=tp({"loadBalancer": RR}).load_balancer)
    other = port_policy(top, 7070)
    assert other is not None and other.connection_pool is top.connection_pool and other.retry_budget is top.retry_budget
    assert port_policy(None, 9080) is None


def test_translate_traffic_policy_subset_replaces_components_whole() -> None:
    top = tp({"connectionPool": POOL_A, "outlierDetection": OUTLIER, "retryBudget": BUDGET})
    subset = tp({"connectionPool": POOL_B, "loadBalancer": RR})
    got = cluster_policy(top, subset, 9080)
    assert got == Policy(subset.connection_pool, top.outlier_detection, subset.load_balancer, None, top.retry_budget)


def test_translate_traffic_policy_subset_port_level_replaces_all_four_even_unset() -> None:
    top = tp({"connectionPool": POOL_A, "outlierDetection": OUTLIER, "retryBudget": BUDGET})
    subset = tp(
        {"retryBudget": {"percent": 9}, "portLevelSettings": [{"port": {"number": 9080}, "loadBalancer": RR}]}
    )
    got = cluster_policy(top, subset, 9080)
    # The subset's own retryBudget is lost with its port-level shadow copy; the top-level one stays.
    assert got == Policy(None, None, subset.port_level_settings[0].load_balancer, None, top.retry_budget)
    on_other_port = cluster_policy(top, subset, 7070)
    assert on_other_port == Policy(top.connection_pool, top.outlier_detection, None, None, subset.retry_budget)


def test_translate_traffic_policy_without_top_level_the_subset_policy_is_used_alone() -> None:
    subset = tp({"connectionPool": POOL_B})
    assert cluster_policy(None, subset, 9080) == Policy(connection_pool=subset.connection_pool)
    assert cluster_policy(None, None, 9080) is None


def test_translate_traffic_policy_oldest_dr_with_a_policy_wins_and_subsets_concatenate() -> None:
    oldest = dr("a", {"subsets": [{"name": "v1", "labels": {"version": "v1"}}]}, second=1)
    middle = dr("b", {"trafficPolicy": {"connectionPool": POOL_A}, "subsets": [{"name": "v2"}]}, second=2)
    newest = dr("c", {"trafficPolicy": {"connectionPool": POOL_B}, "subsets": [{"name": "v1"}]}, second=3)
    merged = DestinationRules([newest, oldest, middle], "default").for_host(FQDN)
    assert merged is not None
    assert merged.rule is oldest
    assert [s.name for s in merged.subsets] == ["v1", "v2"]
    assert merged.subsets[0].labels == {"version": "v1"}
    assert merged.traffic_policy == middle.spec.traffic_policy
    assert merged.subset("v2") is not None and merged.subset("v3") is None and merged.subset(None) is None


def test_translate_traffic_policy_client_namespace_dr_shadows_the_service_namespace() -> None:
    in_service_ns = dr("svc", {"trafficPolicy": {"connectionPool": POOL_A}})
    in_client_ns = dr("cli", {"host": "reviews.default.svc.cluster.local", "subsets": [{"name": "v1"}]}, "team")
    merged = DestinationRules([in_service_ns, in_client_ns], "team").for_host(FQDN)
    assert merged is not None and merged.rule is in_client_ns and merged.traffic_policy is None
    fallback = DestinationRules([in_service_ns], "team").for_host(FQDN)
    assert fallback is not None and fallback.rule is in_service_ns
    assert DestinationRules([in_service_ns], "default").for_host("ratings.default.svc.cluster.local") is None
