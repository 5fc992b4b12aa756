"""Envoy names as istiod spells them, and host resolution relative to an object's namespace."""

from __future__ import annotations

import pytest

from harness.istio.semantics import resolve_host
from harness.mesh.local.translate import names


def test_translate_names_outbound_cluster_with_and_without_subset() -> None:
    fqdn = "reviews.default.svc.cluster.local"
    assert names.outbound_cluster(9080, "v1", fqdn) == "outbound|9080|v1|reviews.default.svc.cluster.local"
    assert names.outbound_cluster(9080, None, fqdn) == "outbound|9080||reviews.default.svc.cluster.local"
    assert names.parse_outbound_cluster("outbound|9080|v1|" + fqdn) == (9080, "v1", fqdn)
    assert names.parse_outbound_cluster("block_all") is None


def test_translate_names_listener_route_vhost_and_stats() -> None:
    assert names.listener(9080) == "0.0.0.0_9080"
    assert names.route_config(9080) == "9080"
    assert names.virtual_host("reviews.default.svc.cluster.local", 9080) == "reviews.default.svc.cluster.local:9080"
    assert names.hcm_stat_prefix(9080) == "outbound_0.0.0.0_9080"
    assert names.alt_stat_name("outbound|9080||r") == "outbound|9080||r;"


@pytest.mark.parametrize(
    ("host", "namespace", "want"),
    [
        ("reviews", "default", "reviews.default.svc.cluster.local"),
        ("Reviews", "other", "reviews.other.svc.cluster.local"),
        ("reviews.other", "default", "reviews.other"),  # has a dot: taken as written, matches no service
        ("reviews.default.svc.cluster.local", "other", "reviews.default.svc.cluster.local"),
        ("10.0.0.1", "default", "10.0.0.1"),
        ("*", "default", "*"),
    ],
)
def test_translate_names_resolve_host_like_istiod(host: str, namespace: str, want: str) -> None:
    assert resolve_host(host, namespace) == want


def test_translate_names_config_path_uses_kebab_kind() -> None:
    assert (
        names.config_path("DestinationRule", "ns", "r")
        == "/apis/networking.istio.io/v1/namespaces/ns/destination-rule/r"
    )
