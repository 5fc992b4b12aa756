"""The pure parts of ``--mesh-attach``: what crosses the API (objects, topologies, batches), the
topology check ``deploy`` makes, the option check, and ``AttachedMesh`` over a stub API client."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, cast

import pytest

from harness.env import wire
from harness.env.client import EnvClient
from harness.env.remote import AttachedMesh, check_attach_options, topology_differences
from harness.env.state import EnvState
from harness.errors import CaseError, MeshError
from harness.istio.model import IstioObject
from harness.mesh.base import Mesh, MeshInfo, SendSpec, SyncToken
from harness.session import load_cases
from harness.topology import DEFAULT_TOPOLOGY, Client, Service, ServicePort, Topology

KNOBBY = Topology(
    services=(Service("reviews", versions=("v1", "v2", "v3"), replicas=(("v1", 2),), ports=(ServicePort("http", 80),),
                      knobs=(("v2", (("status", "503"),)),)),
              Service("api", versions=("v1",), external=True)),
    clients=(Client(), Client("other", labels=(("app", "other"),), source_ip="127.0.0.2")),
    gateway=True,
)


def through_json(body: Any) -> Any:
    return json.loads(json.dumps(body))


def test_env_remote_every_shipped_object_survives_the_wire_with_its_source() -> None:
    objects = [o for case in load_cases([]) for o in case.objects]
    assert len(objects) > 50
    for obj in objects:
        back = wire.decode_object(through_json(wire.encode_object(obj)))
        assert back == obj and back.source == obj.source


def test_env_remote_unreadable_object_is_a_mesh_error_naming_it() -> None:
    with pytest.raises(MeshError, match=r"(?s)unreadable Istio object VirtualService/reviews .*same mesh-harness"):
        wire.decode_object({"kind": "VirtualService", "metadata": {"name": "reviews"}, "spec": {"bogus": 1}})
    with pytest.raises(MeshError, match="unknown kind 'Ingress'"):
        wire.decode_object({"kind": "Ingress", "metadata": {"name": "x"}})


@pytest.mark.parametrize("topology", [DEFAULT_TOPOLOGY, KNOBBY])
def test_env_remote_topology_survives_the_wire(topology: Topology) -> None:
    assert wire.decode_topology(through_json(wire.encode_topology(topology))) == topology


def test_env_remote_send_spec_survives_the_wire_and_partial_specs_take_defaults() -> None:
    spec = SendSpec(url="http://reviews:7070/", method="POST", headers=(("end-user", "jason"),), body=b"\x00\xffhi",
                    count=7, concurrency=3, rate=50.0, protocol="grpc", new_connection=True, client="other",
                    include_echo=True, capture_headers=("location",), via="gateway", headers_cycle=(("x-user", ("a", "b")),))
    assert wire.decode_send_spec(through_json(wire.encode_send_spec(spec))) == spec
    partial = {"url": "http://reviews:9080/", "headers": [["a", "b"]], "count": 2}
    assert wire.decode_send_spec(partial) == SendSpec(url="http://reviews:9080/", headers=(("a", "b"),), count=2)
    with pytest.raises(MeshError, match="send: malformed request"):
        wire.decode_send_spec({"url": "http://reviews:9080/", "body": "not base64!"})


def test_env_remote_same_topology_has_no_differences() -> None:
    assert topology_differences(KNOBBY, replace(KNOBBY)) == []


def test_env_remote_differences_name_each_field_and_side() -> None:
    assert topology_differences(KNOBBY, DEFAULT_TOPOLOGY) == [
        "service api is needed, the environment has none",
        "service reviews: versions [v1, v2, v3] needed, [v1, v2] in the environment",
        "service reviews: replicas {v1: 2} needed, [] in the environment",
        "service reviews: ports [http 80] needed, [http 9080, grpc 7070] in the environment",
        "service reviews: knobs {v2: {status: 503}} needed, [] in the environment",
        "client other is needed, the environment has none",
        "ingress gateway wanted (the environment does not run one)",
    ]
    assert [d for d in topology_differences(DEFAULT_TOPOLOGY, KNOBBY) if "case has none" in d] == [
        "service api runs in the environment, the case has none",
        "client other runs in the environment, the case has none",
    ]
    two = Topology(services=(Service("a"), Service("b")))
    assert topology_differences(two, Topology(services=(Service("b"), Service("a")))) == [
        "services or clients in another order"]


def test_env_remote_attach_options_refuse_another_mesh() -> None:
    check_attach_options("dev", mesh="local", envoy_binary=None, istio_version=None)
    with pytest.raises(CaseError, match=r"--mesh-attach dev: .*; drop --mesh kind, --istio-version$"):
        check_attach_options("dev", mesh="kind", envoy_binary=None, istio_version="1.29")


class StubClient:
    """The ``EnvClient`` calls ``AttachedMesh`` makes, recorded; answers as a daemon would."""

    def __init__(self, topology: Topology) -> None:
        self.state = EnvState(name="dev", pid=1, api_port=1, token="t", mesh="local", started=0.0)
        self.topology = topology
        self.calls: list[tuple[str, Any]] = []
        self.closed = 0

    def attach(self) -> tuple[MeshInfo, Topology]:
        return MeshInfo("local", "1.30", "1.38.3", 0.004), self.topology

    def apply_objects(self, objects: Sequence[IstioObject]) -> SyncToken:
        self.calls.append(("apply", tuple(objects)))
        return SyncToken(5, ())

    def install(self, objects: Sequence[IstioObject]) -> int:
        self.calls.append(("install", tuple(objects)))
        return 6

    def __exit__(self, *exc: object) -> None:
        self.closed += 1


def test_env_remote_attached_mesh_checks_topology_reverts_to_previous_and_only_detaches() -> None:
    stub = StubClient(DEFAULT_TOPOLOGY)
    mesh = AttachedMesh(cast(EnvClient, stub))
    assert isinstance(mesh, Mesh)
    assert mesh.info() == MeshInfo("local", "1.30", "1.38.3", 0.004)
    mesh.deploy(Topology())
    with pytest.raises(MeshError, match=r"environment 'dev' runs other services than this case needs: service "
                                        r"reviews: replicas \{v1: 2\} needed, \[\] in the environment\. An attached "
                                        r"run never redeploys"):
        mesh.deploy(Topology(services=(Service("reviews", replicas=(("v1", 2),)),)))
    previous = tuple(load_cases([])[0].objects)
    assert mesh.apply(()) == SyncToken(5, ())
    mesh.revert(SyncToken(5, previous))
    assert stub.calls == [("apply", ()), ("install", previous)]
    mesh.close()
    mesh.close()
    assert stub.closed == 1
    with pytest.raises(MeshError, match="detached from environment 'dev'"):
        mesh.apply(())
