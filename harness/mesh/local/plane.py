"""The seam between the local mesh and what configures its Envoys: the builtin translator or real istiod.

``LocalMesh`` runs the processes (apps, sidecars, the gateway) and decides *what* config is wanted
(the topology, the case's objects, which proxies are alive); a ``Plane`` turns that into
Envoy config and returns once every live proxy runs it. Both planes drive the same Envoys, apps,
ForwardEcho and access-log join, so every expectation works the same on either.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from harness.istio.model import IstioObject
from harness.mesh.base import ControlPlaneName
from harness.mesh.local.envoy import EnvoyProcess
from harness.mesh.local.xds import TypeStatus
from harness.topology import Client, Topology

PlaneName = ControlPlaneName


@dataclass(frozen=True)
class ProxyNode:
    """How an Envoy introduces itself to its control plane (bootstrap ``node``)."""

    node_id: str
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class Instance:
    """A running app instance: its service, version, and the ports it really listens on (127.0.0.1)."""

    service: str
    version: str
    http_port: int
    grpc_port: int


@dataclass(frozen=True)
class Wanted:
    """The config the mesh wants every proxy to run, as of config version ``version``.

    ``proxies``: every proxy by workload name (``INGRESS_GATEWAY.name`` for the gateway) -> its Envoy
    (a new gateway is not started before ``check`` passed); ``live``: those that can ACK (a dead sidecar cannot; the next deploy restarts it).
    """

    topology: Topology
    objects: tuple[IstioObject, ...]
    instances: Mapping[str, Instance]
    proxies: Mapping[str, EnvoyProcess]
    live: tuple[str, ...]
    version: int


class Plane(Protocol):
    """What configures the local mesh's Envoys. Every call is bounded in time."""

    name: PlaneName
    access_log_on_stdout: bool
    """Whether proxies write access logs to stdout (istiod, as on a cluster) instead of a file of their own."""

    @property
    def xds_port(self) -> int: ...

    @property
    def istio_version(self) -> str:
        """What the run reports as its Istio: the release emulated (``1.30``), or ``istiod <build label>``."""

    def pids(self) -> Mapping[str, int]:
        """Processes of the plane's own (istiod), by name; none for the builtin plane."""

    def start(self, workdir: Path) -> None: ...

    def node(self, proxy: str, client: Client) -> ProxyNode:
        """The node identity of the Envoy of ``proxy`` (a client workload, or the gateway)."""

    def check(self, wanted: Wanted) -> None:
        """Raise (``UnsupportedError``, ``ValidationError``) before anything is pushed or started."""

    def sync(self, wanted: Wanted) -> None:
        """Serve ``wanted`` and return once every live proxy runs it. A rejection (NACK, or istiod
        refusing a file) restores the previous config as ``wanted.version + 1`` on every live proxy,
        waits for it, and raises ``ConfigRejected`` (or ``ValidationError`` for istiod's validation)."""

    def expected_listeners(self, proxy: str) -> frozenset[str] | None:
        """The listener names ``proxy`` must show bound after the last sync; None: whatever it has."""

    def status(self, proxy: str) -> Mapping[str, TypeStatus]:
        """Per xDS type: what the plane sent ``proxy`` and what it ACKed or NACKed."""

    def node_id(self, proxy: str) -> str:
        """The node id ``proxy``'s Envoy introduced itself with."""

    def close(self) -> None: ...

