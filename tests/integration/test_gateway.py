"""The ingress gateway and ServiceEntry hosts on the real local mesh: processes, listeners, routing."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.errors import MeshError, UnsupportedError
from harness.istio.model import IstioObject
from harness.mesh.base import Observation, SendSpec
from harness.mesh.local.mesh import GATEWAY, LocalMesh
from harness.topology import DEFAULT_TOPOLOGY, Service, ServicePort, Topology

pytestmark = pytest.mark.envoy

MakeObjects = Callable[[str], list[IstioObject]]

GATEWAY_AND_VS = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec: {host: reviews, subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: front}
spec:
  hosts: [front.example.com]
  gateways: [gw]
  http: [{route: [{destination: {host: reviews, subset: v2, port: {number: 9080}}}]}]
"""

EXTERNAL = Topology(
    services=(*DEFAULT_TOPOLOGY.services, Service("api", ("v1",), ports=(ServicePort("http", 80),), external=True)),
    clients=DEFAULT_TOPOLOGY.clients,
)
SERVICE_ENTRY = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api}
spec:
  hosts: [api.example.com]
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1}]
"""


def answered(observations: list[Observation]) -> set[tuple[str | None, int, tuple[str, ...]]]:
    return {(o.version, o.status, o.flags) for o in observations}


def test_gateway_starts_with_a_gateway_object_and_routes_its_hosts(clean_mesh: LocalMesh, make_objects: MakeObjects) -> None:
    mesh = clean_mesh
    mesh.apply(make_objects(GATEWAY_AND_VS))

    inventory = mesh.inventory()
    assert GATEWAY in inventory.pids and f"{GATEWAY}/80" in inventory.ports
    assert mesh.listener_address(GATEWAY, 80) == f"127.0.0.1:{inventory.ports[f'{GATEWAY}/80']}"
    via = SendSpec(url="http://front.example.com/", count=20, via="gateway")
    assert answered(mesh.send(via)) == {("v2", 200, ())}
    assert answered(mesh.send(SendSpec(url="http://nobody.example.com/", count=5, via="gateway"))) == {(None, 404, ("NR",))}
    # the client's own sidecar knows no such host: its catch-all answers 502
    assert answered(mesh.send(SendSpec(url="http://reviews:9080/", count=5, headers=(("host", "front.example.com"),)))) \
        == {(None, 502, ())}


def test_gateway_loses_its_listener_when_the_gateway_is_reverted(clean_mesh: LocalMesh, make_objects: MakeObjects) -> None:
    mesh = clean_mesh
    token = mesh.apply(make_objects(GATEWAY_AND_VS))
    mesh.revert(token)

    assert mesh.listener_address(GATEWAY, 80) is None
    with pytest.raises(MeshError, match="the ingress gateway has no listener on port 80"):
        mesh.send(SendSpec(url="http://front.example.com/", via="gateway"))


def test_service_entry_host_is_served_by_the_external_app(clean_mesh: LocalMesh, make_objects: MakeObjects) -> None:
    mesh = clean_mesh
    mesh.deploy(EXTERNAL)
    before = mesh.inventory().ports
    assert "sidecar-client/80" not in before  # the external app's port is no mesh service port

    mesh.apply(make_objects(SERVICE_ENTRY))

    assert "sidecar-client/80" in mesh.inventory().ports  # the entry's port got a listener, read back after apply
    observations = mesh.send(SendSpec(url="http://api.example.com/", count=10, include_echo=True))
    assert {(o.service, o.version, o.status) for o in observations} == {("api", "v1", 200)}
    assert {o.echo.host for o in observations if o.echo} == {"api.example.com"}
    # the external app is not a mesh service: no host of its own
    assert answered(mesh.send(SendSpec(url="http://api/", count=3))) == {(None, 502, ())}


def test_service_entry_without_its_external_app_is_refused(clean_mesh: LocalMesh, make_objects: MakeObjects) -> None:
    version = clean_mesh.config_version
    with pytest.raises(UnsupportedError, match="no external app 'api' serves this host"):
        clean_mesh.apply(make_objects(SERVICE_ENTRY))
    assert clean_mesh.config_version == version
