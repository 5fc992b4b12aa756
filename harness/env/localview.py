"""What the daemon reads from a running ``LocalMesh`` beyond the ``Mesh`` protocol, in one place.

``status`` and ``routes`` need the sidecar's admin address and config dump, and the control
plane's per-node ACK state. LocalMesh does not expose these publicly
yet, so this module reads its internals (``_topology``, ``_sidecars``, ``_control``) and nothing
else in the harness does; when LocalMesh grows public accessors, only this file changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.errors import MeshError
from harness.mesh.local.envoy import EnvoyProcess
from harness.mesh.local.mesh import LocalMesh
from harness.mesh.local.xds import TypeStatus
from harness.topology import Client, Topology


def topology(mesh: LocalMesh) -> Topology:
    deployed: Topology | None = mesh._topology
    if deployed is None:
        raise MeshError("the environment's mesh has no topology deployed")
    return deployed


def sidecar(mesh: LocalMesh, client: str) -> EnvoyProcess:
    sidecars: Mapping[str, EnvoyProcess] = mesh._sidecars
    found = sidecars.get(client)
    if found is None:
        raise MeshError(f"no sidecar for workload {client!r} (workloads: {', '.join(sidecars)})")
    return found


def admin_address(mesh: LocalMesh, client: str) -> str:
    """``127.0.0.1:PORT`` of the client's Envoy admin API (what Envoy wrote to its address file)."""
    path: Path = sidecar(mesh, client)._admin_address_path
    return path.read_text().strip()


def config_dump(mesh: LocalMesh, client: str) -> dict[str, Any]:
    return sidecar(mesh, client).config_dump()


def xds_status(mesh: LocalMesh, node: Client) -> Mapping[str, TypeStatus]:
    control = mesh._control
    if control is None:
        raise MeshError("the environment's control plane is not running")
    return control.status(node.node_id)
