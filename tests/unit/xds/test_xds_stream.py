"""The ADS server's protocol rules, driven through a fake stream (no sockets, no Envoy)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.service.discovery.v3 import discovery_pb2

from harness.errors import ConfigRejected, SyncTimeout
from harness.mesh.local import typeurls
from harness.mesh.local.xds import (
    Callbacks,
    RequestEvent,
    RequestKind,
    ResponseEvent,
    XdsServer,
)
from tests.unit.xds.fake_stream import NODE, Aborted, FakeContext, FakeStream
from tests.unit.xds.xds_builders import ROUTE_NAME, make_snapshot

Scenario = Callable[[XdsServer, FakeStream], Awaitable[None]]


def run(scenario: Scenario, server: XdsServer | None = None) -> None:
    async def main() -> None:
        xds = server or XdsServer()
        xds.set_snapshot(NODE, make_snapshot("1"))
        async with FakeStream(xds) as envoy:
            await scenario(xds, envoy)

    asyncio.run(main())


def names(response: discovery_pb2.DiscoveryResponse) -> list[str]:
    """Resource names in a response (cluster_name for EDS, name otherwise)."""
    out = []
    for packed in response.resources:
        if response.type_url == typeurls.ENDPOINT:
            assignment = endpoint_pb2.ClusterLoadAssignment()
            packed.Unpack(assignment)
            out.append(assignment.cluster_name)
        else:
            out.append(packed.type_url + ":" + str(len(packed.value)))
    return out


async def handshake(
    server: XdsServer, envoy: FakeStream, eds: tuple[str, ...] = ("v1", "v2")
) -> list[discovery_pb2.DiscoveryResponse]:
    """Envoy's start-up sequence as seen in envoy-lab.md 2.1, until every ACK is recorded.

    Returns the CDS, EDS, LDS and RDS responses.
    """
    envoy.request(typeurls.CLUSTER)
    cds = await envoy.recv()
    envoy.request(typeurls.ENDPOINT, eds)
    eds_response = await envoy.recv()
    envoy.request(typeurls.LISTENER)  # Envoy asks for LDS before CDS is ACKed; it must wait
    envoy.ack(eds_response, eds)
    envoy.ack(cds)
    lds = await envoy.recv()
    envoy.ack(lds)
    envoy.request(typeurls.ROUTE, [ROUTE_NAME])
    rds = await envoy.recv()
    envoy.ack(rds, [ROUTE_NAME])
    await server.wait_acked([NODE], "1", timeout=1.0)
    return [cds, eds_response, lds, rds]


def test_xds_stream_handshake_pushes_in_istiod_order_and_waits_for_clusters() -> None:
    async def scenario(server: XdsServer, envoy: FakeStream) -> None:
        responses = await handshake(server, envoy)
        assert [r.type_url for r in responses] == list(typeurls.PUSH_ORDER)
        assert {r.version_info for r in responses} == {"1"}
        assert len({r.nonce for r in responses}) == 4
        assert len(responses[0].resources) == 2
        await server.wait_acked([NODE], "1", timeout=1.0)
        assert server.status(NODE)[typeurls.ROUTE].acked_version == "1"

    run(scenario)


def test_xds_stream_new_cluster_is_made_before_routes_break() -> None:
    async def scenario(server: XdsServer, envoy: FakeStream) -> None:
        await handshake(server, envoy)
        server.set_snapshot(NODE, make_snapshot("2", ("v1", "v2", "v3")))
        cds = await envoy.recv()
        eds = await envoy.recv()
        assert (cds.type_url, eds.type_url) == (typeurls.CLUSTER, typeurls.ENDPOINT)
        assert names(eds) == ["v1", "v2"]
        # Envoy warms v3: it ACKs EDS while widening its subscription; same version, new names.
        envoy.ack(eds, ["v1", "v2", "v3"])
        resent = await envoy.recv()
        assert (resent.type_url, resent.version_info, names(resent)) == (typeurls.ENDPOINT, "2", ["v1", "v2", "v3"])
        assert resent.nonce != eds.nonce
        envoy.ack(resent, ["v1", "v2", "v3"])
        envoy.ack(cds)  # only now may listeners and routes move to version 2
        lds, rds = await envoy.recv(), await envoy.recv()
        assert [(lds.type_url, lds.version_info), (rds.type_url, rds.version_info)] == [
            (typeurls.LISTENER, "2"),
            (typeurls.ROUTE, "2"),
        ]

    run(scenario)


def test_xds_stream_same_clusters_push_every_type_at_once() -> None:
    async def scenario(server: XdsServer, envoy: FakeStream) -> None:
        await handshake(server, envoy)
        server.set_snapshot(NODE, make_snapshot("2", tag="new-route"))
        pushed = [await envoy.recv() for _ in range(4)]
        assert [r.type_url for r in pushed] == list(typeurls.PUSH_ORDER)

    run(scenario)


def test_xds_stream_answers_eds_for_every_requested_cluster() -> None:
    async def scenario(server: XdsServer, envoy: FakeStream) -> None:
        envoy.request(typeurls.ENDPOINT, ["v1", "ghost"])
        eds = await envoy.recv()
        assert names(eds) == ["ghost", "v1"]
        ghost = endpoint_pb2.ClusterLoadAssignment()
        eds.resources[0].Unpack(ghost)
        assert list(ghost.endpoints) == []

    run(scenario)


def test_xds_stream_unchanged_subscription_gets_no_resend() -> None:
    async def scenario(server: XdsServer, envoy: FakeStream) -> None:
        envoy.request(typeurls.ENDPOINT, ["v1"])
        eds = await envoy.recv()
        envoy.ack(eds, ["v1"])
        envoy.request(typeurls.ENDPOINT, ["v1"], nonce="stale-nonce", version="1")
        envoy.request(typeurls.CLUSTER)  # surely answered: it must be the very next response
        assert (await envoy.recv()).type_url == typeurls.CLUSTER

    run(scenario)


def test_xds_stream_stale_nonce_is_neither_ack_nor_nack_but_updates_names() -> None:
    async def scenario(server: XdsServer, envoy: FakeStream) -> None:
        envoy.request(typeurls.ENDPOINT, ["v1"])
        first = await envoy.recv()
        envoy.request(typeurls.ENDPOINT, ["v1", "v2"])  # a new subscription before any ACK
        second = await envoy.recv()
        envoy.nack(first, "late complaint about an old response", ["v1", "v2"])
        envoy.ack(first, ["v1"])  # stale too, and narrows the names back
        third = await envoy.recv()
        assert [names(r) for r in (first, second, third)] == [["v1"], ["v1", "v2"], ["v1"]]
        status = server.status(NODE)[typeurls.ENDPOINT]
        assert (status.acked_version, status.nack_version, status.nack_detail) == (None, None, None)
        assert status.sent_nonce == third.nonce

    run(scenario)


def test_xds_stream_nack_is_recorded_with_error_detail_and_raises_config_rejected() -> None:
    async def scenario(server: XdsServer, envoy: FakeStream) -> None:
        await handshake(server, envoy)
        server.set_snapshot(NODE, make_snapshot("2", tag="bad"))
        pushed = [await envoy.recv() for _ in range(4)]
        for response in pushed[:3]:
            envoy.ack(response, ["v1", "v2"] if response.type_url == typeurls.ENDPOINT else [])
        envoy.nack(pushed[3], "missing ): /(unclosed", [ROUTE_NAME], kept="1")
        with pytest.raises(ConfigRejected) as caught:
            await server.wait_acked([NODE], "2", timeout=2.0)
        assert (caught.value.node, caught.value.type_name, caught.value.version) == (NODE, "RouteConfiguration", "2")
        assert caught.value.detail == "missing ): /(unclosed"
        status = server.status(NODE)[typeurls.ROUTE]
        assert (status.acked_version, status.nack_version, status.sent_version) == ("1", "2", "2")
        last_good = server.last_acked_snapshot(NODE)
        assert last_good is not None and last_good.version == "1"

    run(scenario)


def test_xds_stream_wait_acked_returns_when_the_last_ack_arrives() -> None:
    async def scenario(server: XdsServer, envoy: FakeStream) -> None:
        waiter = asyncio.create_task(server.wait_acked([NODE], "1", timeout=2.0))
        await handshake(server, envoy)
        await asyncio.wait_for(waiter, 2.0)
        snapshot = server.last_acked_snapshot(NODE)
        assert snapshot is not None and snapshot.version == "1"

    run(scenario)


def test_xds_stream_sync_timeout_names_node_type_and_versions() -> None:
    async def scenario(server: XdsServer, envoy: FakeStream) -> None:
        await handshake(server, envoy)
        server.set_snapshot(NODE, make_snapshot("2", tag="new-route"))
        pushed = [await envoy.recv() for _ in range(4)]
        for response in pushed[:3]:
            envoy.ack(response, ["v1", "v2"] if response.type_url == typeurls.ENDPOINT else [])
        envoy.request(typeurls.CLUSTER, nonce=pushed[0].nonce, version="2")  # a duplicate ACK, to sync on
        with pytest.raises(SyncTimeout) as caught:
            await server.wait_acked([NODE], "2", timeout=0.1)
        assert str(caught.value) == "node client.default: RouteConfiguration still at version 1, want 2 after 0.1s"

    run(scenario)


def test_xds_stream_sync_timeout_for_a_node_that_never_connected() -> None:
    async def scenario(server: XdsServer, envoy: FakeStream) -> None:
        server.set_snapshot("ghost.default", make_snapshot("1"))
        with pytest.raises(SyncTimeout, match=r"^node ghost.default: no Envoy with this node id has connected"):
            await server.wait_acked(["ghost.default"], "1", timeout=0.05)
        with pytest.raises(SyncTimeout, match=r"^node other: the control plane holds snapshot version none, want 1"):
            await server.wait_acked(["other"], "1", timeout=0.05)

    run(scenario)


def test_xds_stream_new_stream_from_a_node_must_ack_again() -> None:
    """A restarted Envoy with the same node id holds nothing: old ACKs must not count for it."""

    async def scenario(server: XdsServer, envoy: FakeStream) -> None:
        await handshake(server, envoy)
        async with FakeStream(server) as restarted:
            restarted.request(typeurls.CLUSTER)
            await restarted.recv()
            with pytest.raises(SyncTimeout, match=r"Cluster still at version \(none\), want 1"):
                await server.wait_acked([NODE], "1", timeout=0.05)

    run(scenario)


def test_xds_stream_callbacks_see_every_request_and_response_in_order() -> None:
    seen: list[str] = []

    def on_request(event: RequestEvent) -> None:
        seen.append(f"req {event.kind.value} {typeurls.type_name(event.type_url)}")

    def on_response(event: ResponseEvent) -> None:
        seen.append(f"resp {typeurls.type_name(event.type_url)} v{event.version}")

    async def scenario(server: XdsServer, envoy: FakeStream) -> None:
        await handshake(server, envoy)

    callbacks = Callbacks(on_request=on_request, on_response=on_response, on_stream_open=seen.append)
    run(scenario, XdsServer([callbacks]))
    assert seen == [
        NODE,
        "req subscribe Cluster",
        "resp Cluster v1",
        "req subscribe ClusterLoadAssignment",
        "resp ClusterLoadAssignment v1",
        "req subscribe Listener",
        "req ack ClusterLoadAssignment",
        "req ack Cluster",
        "resp Listener v1",
        "req ack Listener",
        "req subscribe RouteConfiguration",
        "resp RouteConfiguration v1",
        "req ack RouteConfiguration",
    ]
    assert RequestKind.NACK.value == "nack"


def test_xds_stream_first_request_without_node_id_is_refused() -> None:
    async def main() -> None:
        async with FakeStream(XdsServer(), node_id="") as stream:
            stream.request(typeurls.CLUSTER)
            with pytest.raises(Aborted) as caught:
                await stream.recv()
        assert caught.value.code is grpc.StatusCode.INVALID_ARGUMENT

    asyncio.run(main())


def test_xds_delta_is_unimplemented() -> None:
    async def no_requests() -> None:
        with pytest.raises(Aborted) as caught:
            await XdsServer().DeltaAggregatedResources(_empty(), FakeContext())
        assert caught.value.code is grpc.StatusCode.UNIMPLEMENTED

    asyncio.run(no_requests())


async def _empty() -> AsyncIterator[discovery_pb2.DeltaDiscoveryRequest]:
    return
    yield
