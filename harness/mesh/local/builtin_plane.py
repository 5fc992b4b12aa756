"""The builtin control plane: the harness's own translator (istiod's semantics in Python) and ADS server.

No Go, starts in milliseconds, emulates several Istio releases (``istio_version``). Every route is
stamped with the config version, so a response served by an older config is recognisable. A NACK
rolls every proxy back to the snapshot it last ACKed in full, under the next version number.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from harness.errors import ConfigRejected
from harness.mesh.local.controlplane import ControlPlane
from harness.mesh.local.plane import PlaneName, ProxyNode, Wanted
from harness.mesh.local.translate import Endpoint, EnvoyResources, TranslateInput, translate, translate_gateway
from harness.mesh.local.xds import TypeStatus
from harness.topology import INGRESS_GATEWAY, Client, Topology


class BuiltinPlane:
    """Our translator feeding our ADS server (``controlplane.ControlPlane``)."""

    name: PlaneName = "builtin"
    access_log_on_stdout = False

    def __init__(self, istio_version: str, sync_timeout_s: float) -> None:
        self._istio_version = istio_version
        self._sync_timeout_s = sync_timeout_s
        self._xds = ControlPlane()
        self._nodes: dict[str, str] = {}  # proxy -> node id
        self._resources: dict[str, EnvoyResources] = {}  # what was last translated, per proxy

    @property
    def istio_version(self) -> str:
        return self._istio_version

    def pids(self) -> Mapping[str, int]:
        return {}

    @property
    def xds_port(self) -> int:
        return self._xds.port

    def start(self, workdir: Path) -> None:
        self._xds.start()

    def node(self, proxy: str, client: Client) -> ProxyNode:
        self._nodes[proxy] = client.node_id
        return ProxyNode(client.node_id)

    def check(self, wanted: Wanted) -> None:
        """Translation is the check: it refuses what the local mesh cannot reproduce (UnsupportedError)."""
        self._resources = {name: self._translate(name, proxy.access_log_path, wanted) for name, proxy in wanted.proxies.items()}

    def sync(self, wanted: Wanted) -> None:
        """Push what ``check`` translated for the same ``wanted``."""
        version = str(wanted.version)
        nodes = [self._node(name) for name in wanted.live]
        for name in wanted.live:
            self._xds.push(self._node(name), self._resources[name], version)
        try:
            self._xds.wait_synced(nodes, version, self._sync_timeout_s)
        except ConfigRejected:
            rollback = str(wanted.version + 1)
            self._xds.rollback(nodes, rollback)
            self._xds.wait_synced(nodes, rollback, self._sync_timeout_s)
            raise

    def expected_listeners(self, proxy: str) -> frozenset[str] | None:
        return frozenset(str(listener["name"]) for listener in self._resources[proxy].listeners)

    def status(self, proxy: str) -> Mapping[str, TypeStatus]:
        return self._xds.status(self._node(proxy))

    def node_id(self, proxy: str) -> str:
        return self._node(proxy)

    def close(self) -> None:
        self._xds.close()

    def _node(self, proxy: str) -> str:
        return self._nodes[proxy]

    def _translate(self, name: str, access_log: Path, wanted: Wanted) -> EnvoyResources:
        is_gateway = name == INGRESS_GATEWAY.name
        client = INGRESS_GATEWAY if is_gateway else wanted.topology.client(name)
        assert client is not None, name
        return (translate_gateway if is_gateway else translate)(TranslateInput(
            topology=wanted.topology,
            client=client,
            endpoints=_endpoints(wanted),
            objects=wanted.objects,
            config_version=wanted.version,
            access_log_path=str(access_log),
            istio_version=self._istio_version,
        ))


def _endpoints(wanted: Wanted) -> dict[tuple[str, int], list[Endpoint]]:
    out: dict[tuple[str, int], list[Endpoint]] = {}
    topology: Topology = wanted.topology
    for name, inst in sorted(wanted.instances.items()):
        service = topology.service(inst.service)
        if service is None:
            continue
        for port in service.ports:
            real = inst.grpc_port if port.protocol == "grpc" else inst.http_port
            labels = {"app": inst.service, "version": inst.version}
            out.setdefault((inst.service, port.number), []).append(Endpoint("127.0.0.1", real, labels, name))
    return out
