"""Snapshot: parsing translator dicts into packed protos, immutability, and the consistency check."""

from __future__ import annotations

import re

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.route.v3 import route_pb2

from harness.errors import MeshError
from harness.mesh.local import typeurls
from harness.mesh.local.snapshot import Snapshot
from tests.unit.xds.xds_builders import (
    ROUTE_NAME,
    make_cluster,
    make_endpoints,
    make_listener,
    make_resources,
    make_route,
    make_snapshot,
)


def test_snapshot_from_dicts_packs_each_resource_under_its_name() -> None:
    snapshot = make_snapshot("7", ("v1", "v2"))
    assert snapshot.version == "7"
    assert list(snapshot.resources) == list(typeurls.PUSH_ORDER)
    assert sorted(snapshot.resources[typeurls.CLUSTER]) == ["v1", "v2"]
    assert sorted(snapshot.resources[typeurls.ENDPOINT]) == ["v1", "v2"]
    assert list(snapshot.resources[typeurls.LISTENER]) == ["http"]
    route = route_pb2.RouteConfiguration()
    assert snapshot.resources[typeurls.ROUTE][ROUTE_NAME].Unpack(route)
    assert route.virtual_hosts[0].response_headers_to_add[0].header.value == "7"


def test_snapshot_parses_typed_configs_of_every_imported_extension() -> None:
    listener = make_listener(access_log="/tmp/access.log")
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["http_filters"][0:0] = [
        {"name": "envoy.filters.http.fault", "typed_config": {"@type": typeurls.FAULT}},
        {"name": "envoy.filters.http.cors", "typed_config": {"@type": typeurls.CORS}},
    ]
    hcm["request_id_extension"] = {"typed_config": {"@type": typeurls.UUID_REQUEST_ID}}
    cluster = make_cluster("grpc")
    cluster["typed_extension_protocol_options"] = {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": typeurls.HTTP_PROTOCOL_OPTIONS,
            "explicit_http_config": {"http2_protocol_options": {}},
        }
    }
    route = make_route("1", ["grpc"])
    route["virtual_hosts"][0]["retry_policy"] = {
        "retry_host_predicate": [
            {"name": "envoy.retry_host_predicates.previous_hosts", "typed_config": {"@type": typeurls.PREVIOUS_HOSTS}}
        ]
    }
    snapshot = Snapshot.from_dicts(
        "1", clusters=[cluster], endpoints=[make_endpoints("grpc", 1)], listeners=[listener], routes=[route]
    )
    snapshot.consistent()


def test_snapshot_rejects_a_dict_envoy_would_not_parse_naming_the_resource() -> None:
    bad = make_cluster("outbound|9080|v1|reviews")
    bad["connect_timeout"] = "soon"
    with pytest.raises(MeshError, match=re.escape("harness bug: Cluster #1 'outbound|9080|v1|reviews' is not valid")):
        Snapshot.from_dicts("1", clusters=[make_cluster("ok"), bad])


def test_snapshot_unknown_type_url_says_which_module_to_import() -> None:
    route = make_route("1", ["v1"])
    route["typed_per_filter_config"] = {"x": {"@type": typeurls.API_PREFIX + "envoy.extensions.nothing.v3.Nope"}}
    with pytest.raises(MeshError) as caught:
        Snapshot.from_dicts("1", routes=[route])
    assert "RouteConfiguration #0 'local_route'" in str(caught.value)
    assert str(caught.value).endswith("import the proto module of that '@type' in harness/mesh/local/snapshot.py")


def test_snapshot_rejects_duplicate_and_unnamed_resources() -> None:
    with pytest.raises(MeshError, match=r"^harness bug: Cluster 'v1' appears twice in one snapshot$"):
        Snapshot.from_dicts("1", clusters=[make_cluster("v1"), make_cluster("v1")])
    with pytest.raises(MeshError, match=r"^harness bug: ClusterLoadAssignment #0 None has no cluster_name$"):
        Snapshot.from_dicts("1", endpoints=[{"endpoints": []}])


def test_snapshot_is_read_only() -> None:
    snapshot = make_snapshot("1")
    with pytest.raises(TypeError):
        snapshot.resources[typeurls.CLUSTER]["v3"] = snapshot.resources[typeurls.CLUSTER]["v1"]  # type: ignore[index]
    with pytest.raises(AttributeError):
        snapshot.version = "2"  # type: ignore[misc]
    relabelled = snapshot.with_version("9")
    assert (relabelled.version, relabelled.resources) == ("9", snapshot.resources)


def test_snapshot_knows_the_eds_and_rds_names_it_references() -> None:
    snapshot = make_snapshot("1", ("v1", "v2"))
    assert snapshot.eds_names == {"v1", "v2"}
    assert snapshot.rds_names == {ROUTE_NAME}
    snapshot.consistent()


def test_snapshot_consistent_lists_missing_references_like_go_control_plane() -> None:
    resources = make_resources("1", {"v1": 1, "v2": 2})
    snapshot = Snapshot.from_dicts("3", clusters=resources.clusters, listeners=resources.listeners)
    with pytest.raises(MeshError) as caught:
        snapshot.consistent()
    assert str(caught.value) == (
        "harness bug: snapshot 3: inconsistent ClusterLoadAssignment reference: missing resources ['v1', 'v2']; "
        "inconsistent RouteConfiguration reference: missing resources ['local_route']"
    )


def test_snapshot_rejects_unknown_resource_types() -> None:
    with pytest.raises(MeshError, match="unknown resource types"):
        Snapshot("1", {typeurls.ROUTER: {}})


def test_a_resource_parsed_before_is_reused_and_any_change_to_it_is_parsed_again() -> None:
    """Parsing is memoised by each resource's canonical JSON: the same dict (in any key order) gives the
    same packed proto, and a changed field, however deep, gives the new content."""
    cluster = make_cluster("v1")
    first = Snapshot.from_dicts("1", clusters=[cluster]).resources[typeurls.CLUSTER]["v1"]
    reordered = dict(reversed(list(cluster.items())))
    assert Snapshot.from_dicts("2", clusters=[reordered]).resources[typeurls.CLUSTER]["v1"] is first

    changed = make_cluster("v1")
    changed["eds_cluster_config"]["service_name"] = "outbound|9080|v1|reviews"
    again = Snapshot.from_dicts("3", clusters=[changed]).resources[typeurls.CLUSTER]["v1"]
    assert again != first
    parsed = cluster_pb2.Cluster()
    assert again.Unpack(parsed) and parsed.eds_cluster_config.service_name == "outbound|9080|v1|reviews"
