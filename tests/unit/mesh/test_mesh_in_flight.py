"""Which sidecar gauges mean "a request is still in flight" (what LocalMesh.drain waits on)."""

from __future__ import annotations

from harness.mesh.local.mesh import in_flight


def test_in_flight_counts_upstream_and_downstream_requests_only() -> None:
    stats = {
        "cluster.outbound|9080|v3|reviews.default.svc.cluster.local.upstream_rq_active": 2,  # a mirror copy
        "cluster.outbound|9080|v1|reviews.default.svc.cluster.local.upstream_rq_active": 0,
        "http.outbound_0.0.0.0_9080.downstream_rq_active": 1,  # e.g. held by a fault delay
        "http.outbound_0.0.0.0_7070.downstream_rq_active": 0,
        "cluster.outbound|9080|v1|reviews.default.svc.cluster.local.upstream_rq_total": 9,
        "cluster.outbound|9080|v1|reviews.default.svc.cluster.local.upstream_cx_active": 3,
    }
    assert in_flight(stats) == {
        "cluster.outbound|9080|v3|reviews.default.svc.cluster.local.upstream_rq_active": 2,
        "http.outbound_0.0.0.0_9080.downstream_rq_active": 1,
    }


def test_in_flight_ignores_the_xds_stream_and_the_admin_read_itself() -> None:
    stats = {"cluster.xds_cluster.upstream_rq_active": 1, "http.admin.downstream_rq_active": 1}
    assert in_flight(stats) == {}
