"""What the local mesh refuses up front, per control plane (pure): the builtin translator refuses service
ports Istio reads as TCP or sniffs, real istiod serves them; both refuse what loopback cannot reproduce."""

from __future__ import annotations

import pytest

from harness.istio.load import load_objects
from harness.mesh.local.refusals import local_refusals
from harness.topology import DEFAULT_TOPOLOGY, Service, ServicePort, Topology
from harness.yamlsource import load_documents

TCP_SERVICE = Topology(services=(Service("db", versions=("v1",), ports=(ServicePort("tcp-db", 5432),)),))
DELEGATE = load_objects(load_documents("""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec: {hosts: [reviews], http: [{delegate: {name: child}}]}
""", "case.yaml"))


def test_a_tcp_port_is_refused_by_the_builtin_plane_only() -> None:
    refused, = local_refusals([], TCP_SERVICE, "builtin")
    assert "tcp-db" in str(refused) and "--control-plane istiod" in str(refused)
    assert local_refusals([], TCP_SERVICE, "istiod") == []


@pytest.mark.parametrize("plane", ["builtin", "istiod"])
def test_what_loopback_cannot_reproduce_is_refused_on_both_planes(plane: str) -> None:
    refused, = local_refusals(DELEGATE, DEFAULT_TOPOLOGY, plane)  # type: ignore[arg-type]
    assert "delegate" in str(refused) and refused.file == "case.yaml"
