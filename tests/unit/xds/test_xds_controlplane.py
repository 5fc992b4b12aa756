"""ControlPlane: the threaded gRPC server on 127.0.0.1, driven by a real gRPC client (no Envoy)."""

from __future__ import annotations

import queue
from collections.abc import Iterator

import grpc
import pytest
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from harness.errors import MeshError, SyncTimeout
from harness.mesh.local import typeurls
from harness.mesh.local.controlplane import ControlPlane
from tests.unit.xds.xds_builders import make_resources, make_snapshot

NODE = "client.default"
RPC_TIMEOUT_S = 5.0


class GrpcEnvoy:
    """A minimal ADS client over a real channel: send requests, read responses, each read bounded."""

    def __init__(self, port: int) -> None:
        self._channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.enable_http_proxy", 0)])
        self._outbox: queue.Queue[discovery_pb2.DiscoveryRequest | None] = queue.Queue()
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self._channel)
        self._call = stub.StreamAggregatedResources(self._requests(), timeout=RPC_TIMEOUT_S)

    def _requests(self) -> Iterator[discovery_pb2.DiscoveryRequest]:
        while (request := self._outbox.get(timeout=RPC_TIMEOUT_S)) is not None:
            yield request

    def send(self, request: discovery_pb2.DiscoveryRequest) -> None:
        self._outbox.put(request)

    def recv(self) -> discovery_pb2.DiscoveryResponse:
        response: discovery_pb2.DiscoveryResponse = next(self._call)
        return response

    def close(self) -> None:
        self._outbox.put(None)
        self._call.cancel()
        self._channel.close()


@pytest.fixture
def plane() -> Iterator[ControlPlane]:
    with ControlPlane() as control_plane:
        yield control_plane


def test_xds_controlplane_serves_and_tracks_acks_over_grpc(plane: ControlPlane) -> None:
    snapshot = plane.push(NODE, make_resources("1", {"v1": 1}), 1)
    assert snapshot.version == "1"
    envoy = GrpcEnvoy(plane.port)
    try:
        first = discovery_pb2.DiscoveryRequest(type_url=typeurls.CLUSTER)
        first.node.id = NODE
        envoy.send(first)
        cds = envoy.recv()
        assert (cds.type_url, cds.version_info, len(cds.resources)) == (typeurls.CLUSTER, "1", 1)
        envoy.send(discovery_pb2.DiscoveryRequest(type_url=typeurls.CLUSTER, version_info="1", response_nonce=cds.nonce))
        with pytest.raises(SyncTimeout, match=r"ClusterLoadAssignment still at version \(none\), want 1 after 0\.1s"):
            plane.wait_synced([NODE], 1, 0.1)
        assert plane.status(NODE)[typeurls.CLUSTER].acked_version == "1"
    finally:
        envoy.close()


def test_xds_controlplane_refuses_an_inconsistent_push(plane: ControlPlane) -> None:
    resources = make_resources("1", {"v1": 1})
    broken = type(resources)(resources.clusters, (), resources.listeners, resources.routes)
    with pytest.raises(MeshError, match=r"inconsistent ClusterLoadAssignment reference: missing resources \['v1'\]"):
        plane.push(NODE, broken, 1)


def test_xds_controlplane_cannot_roll_back_a_node_that_never_acked(plane: ControlPlane) -> None:
    plane.push_all({NODE: make_snapshot("1")})
    assert plane.last_acked(NODE) is None
    with pytest.raises(MeshError, match=r"^cannot roll back nodes \['client.default'\]: they never ACKed"):
        plane.rollback([NODE], 2)


def test_xds_controlplane_close_is_idempotent_and_quiet(capfd: pytest.CaptureFixture[str]) -> None:
    plane = ControlPlane()
    plane.start()
    plane.push_all({NODE: make_snapshot("1")})
    envoy = GrpcEnvoy(plane.port)
    request = discovery_pb2.DiscoveryRequest(type_url=typeurls.CLUSTER)
    request.node.id = NODE
    envoy.send(request)
    envoy.recv()  # a stream is open while the server closes
    plane.close()
    plane.close()
    envoy.close()
    out, err = capfd.readouterr()
    assert "CancelledError" not in out + err
    with pytest.raises(MeshError, match="not running"):
        plane.push_all({NODE: make_snapshot("2")})
    with pytest.raises(MeshError, match="cannot restart"):
        plane.start()


def test_xds_controlplane_port_before_start_is_an_error() -> None:
    with pytest.raises(MeshError, match=r"not started; call start\(\) first"):
        _ = ControlPlane().port
