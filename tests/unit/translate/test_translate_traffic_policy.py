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


# --- which namespace's DR applies (push_context.go destinationRule / setDestinationRules, istiod 1.30.3) ----------

ROOT = "istio-system"


def policy_of(rules: DestinationRules, fqdn: str = FQDN) -> DestinationRule | None:
    merged = rules.for_host(fqdn)
    return None if merged is None else merged.rule


def test_translate_dr_lookup_proxy_in_root_namespace_prefers_the_service_namespace() -> None:
    # D4(a): for a proxy in istio-system, step 1 sees only private root DRs; an exported root DR
    # loses to the service namespace's DR (and is the fallback when there is none).
    root = dr("root", {"host": FQDN, "trafficPolicy": {"loadBalancer": {"simple": "RANDOM"}}}, ROOT)
    service = dr("svc", {"trafficPolicy": {"loadBalancer": RR}})
    assert policy_of(DestinationRules([root, service], ROOT)) is service
    assert policy_of(DestinationRules([root], ROOT)) is root
    # an ordinary proxy in the root namespace's position: the client's own namespace first
    assert policy_of(DestinationRules([root, service], "default")) is service
    assert policy_of(DestinationRules([root], "team")) is root


def test_translate_dr_lookup_private_root_dr_wins_for_root_proxies_only() -> None:
    private_root = dr("root", {"host": FQDN, "exportTo": ["."]}, ROOT)
    also_private = dr("root2", {"host": FQDN, "exportTo": [ROOT]}, ROOT, second=1)
    service = dr("svc", {})
    assert policy_of(DestinationRules([private_root, service], ROOT)) is private_root
    assert policy_of(DestinationRules([also_private, service], ROOT)) is also_private
    assert policy_of(DestinationRules([private_root], "team")) is None


def test_translate_dr_lookup_honours_export_to() -> None:
    private = dr("svc", {"exportTo": ["."]})
    to_team = dr("svc", {"exportTo": ["team"]})
    to_other = dr("svc", {"exportTo": ["other"]})
    public = dr("svc", {"exportTo": ["*"]})
    assert policy_of(DestinationRules([private], "default")) is private
    assert policy_of(DestinationRules([private], "team")) is None
    assert policy_of(DestinationRules([to_team], "team")) is to_team
    assert policy_of(DestinationRules([to_other], "team")) is None
    # exportTo [team] without '.': not in its own namespace's index, and not exported to 'default'
    assert policy_of(DestinationRules([to_team], "default")) is None
    assert policy_of(DestinationRules([public], "team")) is public
    # a root DR exported only to 'other' is skipped, and nothing else applies
    root_to_other = dr("root", {"host": FQDN, "exportTo": ["other"]}, ROOT)
    assert policy_of(DestinationRules([root_to_other], "team")) is None
    assert policy_of(DestinationRules([root_to_other], "other")) is root_to_other


def test_translate_dr_lookup_unexported_service_dr_falls_back_to_the_root_namespace() -> None:
    private = dr("svc", {"exportTo": ["."]})
    root = dr("root", {"host": FQDN}, ROOT)
    assert policy_of(DestinationRules([private, root], "team")) is root
    assert policy_of(DestinationRules([private, root], "default")) is private


def test_translate_dr_lookup_service_entry_host_uses_the_entry_namespace() -> None:
    # D4(b): a ServiceEntry host's service namespace is the entry's namespace.
    host = "api.example.com"
    in_se_ns = dr("api", {"host": host}, "egress")
    rules = DestinationRules([in_se_ns], "default", {host: "egress"})
    assert policy_of(rules, host) is in_se_ns
    # a host the proxy does not see (not in its service map) has no DR at all
    assert policy_of(DestinationRules([in_se_ns], "egress", {}), host) is None


def test_translate_dr_merge_keeps_different_export_to_apart_from_1_24() -> None:
    # ENABLE_ENHANCED_DESTINATIONRULE_MERGE: the second DR (other exportTo) is an entry of its own,
    # and a sidecar uses the last entry; before 1.24 both merge into the oldest.
    first = dr("a", {"trafficPolicy": {"loadBalancer": RR}, "subsets": [{"name": "v1"}]}, second=1)
    second = dr("b", {"exportTo": ["*"], "subsets": [{"name": "v2"}]}, second=2)
    enhanced = DestinationRules([first, second], "default").for_host(FQDN)
    assert enhanced is not None and enhanced.rule is second
    assert [s.name for s in enhanced.subsets] == ["v2"] and enhanced.traffic_policy is None
    legacy = DestinationRules([first, second], "default", merge_by_export_to=False).for_host(FQDN)
    assert legacy is not None and legacy.rule is first
    assert [s.name for s in legacy.subsets] == ["v1", "v2"] and legacy.traffic_policy == first.spec.traffic_policy


def test_translate_dr_merge_superset_export_to_merges_into_the_narrower_entry() -> None:
    narrow = dr("a", {"exportTo": ["team"], "subsets": [{"name": "v1"}]}, second=1)
    wide = dr("b", {"exportTo": ["team", "other"], "subsets": [{"name": "v2"}]}, second=2)
    merged = DestinationRules([narrow, wide], "team").for_host(FQDN)
    assert merged is not None and merged.rule is narrow and [s.name for s in merged.subsets] == ["v1", "v2"]
    # the wider DR merged into the narrow entry and was not added on its own, so 'other' sees nothing
    assert DestinationRules([narrow, wide], "other").for_host(FQDN) is None


def test_translate_dr_merge_before_1_24_takes_the_first_non_empty_export_to() -> None:
    open_ = dr("a", {}, second=1)
    to_other = dr("b", {"exportTo": ["other"]}, second=2)
    legacy = DestinationRules([open_, to_other], "team", merge_by_export_to=False)
    assert policy_of(legacy) is None  # the merged entry took exportTo [other]
    assert policy_of(DestinationRules([open_, to_other], "team")) is open_
