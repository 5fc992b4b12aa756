"""Every socket the harness listens on is bound to loopback (issue 8), and the daemon API wants its token.

A real LocalMesh with the default topology and the ingress gateway (started by a Gateway object,
as cases/ingress-gateway.yaml does), plus an interactive environment (``mesh-harness up``: its
daemon, with a mesh of its own), then every listening TCP socket and every bound, unconnected UDP
socket of this process and all its descendants is read (psutil: /proc/<pid>/fd inodes matched in
/proc/net/{tcp,tcp6,udp,udp6}). Each must be bound to the loopback range (127.0.0.0/8: the istiod plane's
proxies each have a 127.A.B.x of their own) or ::1; none to 0.0.0.0 or ::. A mesh on the istiod plane
(istiod's own ports, its sidecar and gateway) is enumerated beside them.

So that a pass cannot come from a listener the enumeration missed, the enumerated set must
contain every port the harness says it opened: the xDS servers, each Envoy's admin port and
listeners (sidecars and gateway), each app's HTTP, gRPC and control ports, and the daemon's API.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import psutil
import pytest

from harness import paths
from harness.cli import EXIT_OK, main
from harness.env import state
from harness.env.client import EnvClient
from harness.istio.model import IstioObject
from harness.mesh.local.mesh import GATEWAY, LocalMesh
from harness.topology import DEFAULT_TOPOLOGY
from tests.istiod import istiod_build

pytestmark = pytest.mark.envoy

MakeObjects = Callable[[str], list[IstioObject]]
ENV_NAME = "security"

GATEWAY_CONFIG = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bookinfo-gateway}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [bookinfo.example.com]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo}
spec:
  hosts: [bookinfo.example.com]
  gateways: [bookinfo-gateway]
  http: [{route: [{destination: {host: reviews, port: {number: 9080}}}]}]
"""


@dataclass(frozen=True)
class Listener:
    pid: int
    process: str
    kind: str  # tcp or udp
    ip: str
    port: int

    def __str__(self) -> str:
        return f"{self.kind} {self.ip}:{self.port} (pid {self.pid}, {self.process})"


def is_loopback(ip: str) -> bool:
    """127.0.0.0/8 (the istiod plane gives each proxy a 127.A.B.x of its own) or ::1; an IPv6 socket bound to
    ``::ffff:127.0.0.1`` (how aiohttp and gRPC bind 127.0.0.1 on a dual-stack host) accepts only IPv4
    loopback, so it counts as 127.0.0.1."""
    address = ipaddress.ip_address(ip)
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return (mapped or address).is_loopback


def process_tree() -> list[psutil.Process]:
    """This test process and every descendant (the daemon is our child too: ``up`` spawns it)."""
    me = psutil.Process()
    return [me, *me.children(recursive=True)]


def listeners(processes: list[psutil.Process]) -> list[Listener]:
    """Listening TCP sockets and bound, unconnected UDP sockets of ``processes``."""
    found: list[Listener] = []
    for proc in processes:
        try:
            name = " ".join(proc.cmdline()[:3])
            sockets = proc.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue  # exited while we looked: it listens on nothing
        for sock in sockets:
            is_udp = sock.type == socket.SOCK_DGRAM
            if (is_udp and not sock.raddr) or sock.status == psutil.CONN_LISTEN:
                found.append(Listener(proc.pid, name, "udp" if is_udp else "tcp", sock.laddr.ip, sock.laddr.port))
    return found


def mesh_ports(mesh: LocalMesh, name: str = "test mesh") -> dict[str, int]:
    """Every port the local mesh says it bound: inventory (apps, listeners, xDS) and each Envoy's admin."""
    ports = {f"{name} {k}": v for k, v in mesh.inventory().ports.items()}
    for proxy in ("client", GATEWAY):
        ports[f"{name} {proxy} admin"] = int(mesh.sidecar(proxy).admin_address.rsplit(":", 1)[1])
    return ports


def env_ports(current: state.EnvState) -> dict[str, int]:
    """Every port the environment reports: its API, its apps, its client's app, sidecar admin and listeners."""
    with EnvClient(current) as client:
        status = client.status()
    ports = {"daemon API": current.api_port}
    for i in status["instances"]:
        ports.update({f"env {i['instance']} {p}": i[p] for p in ("http", "grpc", "control")})
    for c in status["clients"]:
        ports[f"env {c['client']} control"] = c["control"]
        ports[f"env sidecar-{c['client']} admin"] = int(c["admin"].rsplit(":", 1)[1])
        ports.update({f"env sidecar-{c['client']} {p}": int(bound.rsplit(":", 1)[1])
                      for p, bound in c["listeners"].items()})
    return ports


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[state.EnvState]:
    """A running ``mesh-harness up`` environment for this module, brought down at the end whatever happened."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(paths.HOME_VARIABLE, str(tmp_path_factory.mktemp("env-home")))
        try:
            assert main(["up", "--name", ENV_NAME]) == EXIT_OK
            yield state.live_state(ENV_NAME, on_stale=pytest.fail)
        finally:
            main(["down", "--name", ENV_NAME])


@pytest.fixture(scope="module")
def istiod_mesh() -> Iterator[LocalMesh]:
    """A mesh on the istiod plane: istiod's own ports, and its proxies on their own 127.A.B.x addresses.
    Set up before ``environment``, which points MESH_HARNESS_HOME (where the build is cached) elsewhere."""
    build = istiod_build()
    with LocalMesh(control_plane="istiod", istiod_binary=str(build.binary)) as mesh:
        mesh.deploy(DEFAULT_TOPOLOGY)
        yield mesh


def test_every_listener_of_the_harness_binds_loopback(clean_mesh: LocalMesh, make_objects: MakeObjects,
                                                      istiod_mesh: LocalMesh, environment: state.EnvState) -> None:
    clean_mesh.apply(make_objects(GATEWAY_CONFIG))  # starts the ingress gateway, as cases/ingress-gateway.yaml does
    istiod_mesh.apply(make_objects(GATEWAY_CONFIG))
    expected = {**mesh_ports(clean_mesh), **env_ports(environment), **mesh_ports(istiod_mesh, "istiod mesh")}

    found = listeners(process_tree())

    exposed = [str(s) for s in found if not is_loopback(s.ip)]
    assert not exposed, "listening beyond loopback:\n" + "\n".join(exposed)
    seen = {s.port for s in found}
    missed = {name: port for name, port in expected.items() if port not in seen}
    assert not missed, f"ports the harness opened but the enumeration did not find: {missed}\nfound: " + \
        "\n".join(map(str, found))
    assert environment.pid in {s.pid for s in found}, "the daemon's own listener (API, xDS) was not enumerated"
    istiod_pid = istiod_mesh.inventory().pids["istiod"]
    assert {s.port for s in found if s.pid == istiod_pid} >= {istiod_mesh.inventory().ports["xds"]}
    assert {"daemon API", "test mesh xds", "test mesh client admin", f"test mesh {GATEWAY} admin",
            f"test mesh {GATEWAY}/80", "test mesh reviews-v1-0/control", "env reviews-v1-0 control"} <= set(expected)
    assert len(found) >= len(set(expected.values()))


def test_daemon_api_refuses_requests_without_its_token(environment: state.EnvState) -> None:
    url = f"http://127.0.0.1:{environment.api_port}"
    with httpx.Client(base_url=url, trust_env=False, timeout=10.0) as http:
        for headers in ({}, {"Authorization": "Bearer not-the-token"}, {"Authorization": environment.token}):
            for method, path in (("GET", "/status"), ("POST", "/down"), ("POST", "/mesh/apply")):
                response = http.request(method, path, headers=headers, json={})
                assert response.status_code == 401, (method, path, headers, response.text)
                assert response.json() == {"error": "MeshError", "message": "wrong or missing token"}
        assert http.get("/status", headers={"Authorization": f"Bearer {environment.token}"}).status_code == 200
    assert state.is_daemon(environment.pid, ENV_NAME), "an unauthenticated /down stopped the daemon"


@pytest.mark.parametrize(("ip", "loopback"), [("127.0.0.1", True), ("::1", True), ("::ffff:127.0.0.1", True),
                                              ("0.0.0.0", False), ("::", False), ("::ffff:0.0.0.0", False),
                                              ("127.3.4.10", True), ("::ffff:127.3.4.10", True), ("128.0.0.1", False),
                                              ("10.1.2.3", False), ("fe80::1", False)])
def test_loopback_check_refuses_wildcard_and_other_addresses(ip: str, loopback: bool) -> None:
    assert is_loopback(ip) is loopback
