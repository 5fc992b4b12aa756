"""What an environment's daemon can do with its mesh, as JSON-ready answers; no HTTP here.

One ``EnvService`` owns the mesh and the set of applied objects (``delete`` needs it: it pushes
the applied set minus the deleted objects through ``LocalMesh.revert``, which installs exactly
the objects of the token it is given). Every call holds one lock, since a mesh's methods are
not safe to call concurrently.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from harness.env import wire
from harness.env.manifests import Manifest, load_manifests
from harness.env.sync import sync_rows
from harness.errors import Issue, MeshError, ValidationError
from harness.istio.model import IstioObject
from harness.mesh.base import SyncToken
from harness.mesh.local.mesh import LocalMesh
from harness.report.routes import route_configs
from harness.topology import Topology


class EnvService:
    def __init__(self, mesh: LocalMesh) -> None:
        self._mesh = mesh
        self._lock = threading.Lock()
        self._applied: dict[tuple[str, str, str], IstioObject] = {}

    def status(self) -> dict[str, Any]:
        """Services and instances (pids, ports), clients (sidecar, admin, listeners), objects, xDS sync."""
        with self._lock:
            mesh = self._mesh
            topo = _deployed(mesh)
            inv = mesh.inventory()
            info = mesh.info()
            instances = [
                {"instance": name, "service": svc, "version": ver, "pid": inv.pids[name],
                 **{p: inv.ports[f"{name}/{p}"] for p in ("http", "grpc", "control")}}
                for name, (svc, ver) in sorted(topo.instances().items())
            ]
            clients = [
                {"client": c.name, "node": mesh.node_id(c.name), "app_pid": inv.pids[c.name],
                 "control": inv.ports[f"{c.name}/control"], "sidecar_pid": inv.pids[f"sidecar-{c.name}"],
                 "admin": mesh.sidecar(c.name).admin_address,
                 "listeners": {str(port): mesh.listener_address(c.name, port) for port in topo.service_ports()}}
                for c in topo.clients
            ]
            mesh_version = mesh.config_version if mesh.control_plane == "builtin" else None
            sync = [asdict(row) for c in topo.clients
                    for row in sync_rows(mesh.node_id(c.name), mesh.xds_status(c.name), mesh_version)]
            return {
                "mesh": asdict(info), "config_version": mesh.config_version, "workdir": str(inv.workdir),
                "services": [{"service": s.name, "ports": {p.name: p.number for p in s.ports},
                              "versions": list(s.versions)} for s in topo.services],
                "instances": instances, "clients": clients, "objects": [_object_row(o) for o in self._applied.values()],
                "sync": sync,
            }

    def apply(self, manifests: Sequence[Manifest]) -> dict[str, Any]:
        """Add or replace the objects; returns once every sidecar ACKed (a NACK raises ConfigRejected)."""
        objects = load_manifests(manifests).objects
        token = self.apply_objects(objects)
        return {"version": token.version, "objects": [o.ref for o in objects]}

    def apply_objects(self, objects: Sequence[IstioObject]) -> SyncToken:
        """``LocalMesh.apply`` on the environment's mesh; the token's ``previous`` is the set applied before."""
        with self._lock:
            token = self._mesh.apply(objects)
            self._applied.update((o.key, o) for o in objects)
            return token

    def install(self, objects: Sequence[IstioObject]) -> int:
        """Make ``objects`` exactly the applied set (``LocalMesh.revert``: an attached run's revert); the version."""
        with self._lock:
            self._install({o.key: o for o in objects})
            return self._mesh.config_version

    def _install(self, objects: dict[tuple[str, str, str], IstioObject]) -> None:
        self._mesh.revert(SyncToken(self._mesh.config_version, tuple(objects.values())))
        self._applied = objects

    def delete(self, manifests: Sequence[Manifest]) -> dict[str, Any]:
        """Remove the objects named in the files (matched by kind, namespace and name); all must be applied."""
        objects = load_manifests(manifests).objects
        with self._lock:
            missing = [o for o in objects if o.key not in self._applied]
            if missing:
                applied = ", ".join(o.ref for o in self._applied.values()) or "none"
                raise ValidationError([
                    Issue(f"not applied in this environment (applied: {applied}); nothing was deleted",
                          o.source.file if o.source else None, o.source.line if o.source else None, o.ref)
                    for o in missing
                ])
            self._install({k: o for k, o in self._applied.items() if k not in {o.key for o in objects}})
            return {"version": self._mesh.config_version, "objects": [o.ref for o in objects]}

    def send(self, body: dict[str, Any]) -> dict[str, Any]:
        spec = wire.decode_send_spec(body)
        with self._lock:
            observations = self._mesh.send(spec)
        return {"observations": observations}  # the daemon's orjson writes each dataclass as its fields

    def attach(self) -> dict[str, Any]:
        """What an attached run needs first: the mesh's identity and the topology it runs."""
        with self._lock:
            return {"mesh": asdict(self._mesh.info()), "topology": wire.encode_topology(_deployed(self._mesh))}

    def proxy_stats(self, workload: str) -> dict[str, Any]:
        with self._lock:
            return {"stats": self._mesh.proxy_stats(workload)}

    def drain(self, timeout_s: float) -> dict[str, Any]:
        with self._lock:
            self._mesh.drain(timeout_s)
        return {}

    def routes(self, client: str) -> dict[str, Any]:
        """The client sidecar's route configurations, as Envoy's config_dump has them."""
        with self._lock:
            return {"route_configs": route_configs(self._mesh.sidecar(client).config_dump())}

    def app_log(self, service: str | None, version: str | None, since: float) -> dict[str, Any]:
        """App request-log records newer than ``since`` (a record's ``time``), oldest first."""
        with self._lock:
            topo = _deployed(self._mesh)
            if service is not None and topo.service(service) is None:
                raise MeshError(f"no service {service!r} in this environment "
                                f"(services: {', '.join(s.name for s in topo.services)})")
            services = [service] if service is not None else [s.name for s in topo.services]
            records = [r for s in services for r in self._mesh.app_log(s, version, since=since) if r.time > since]
        return {"records": sorted(records, key=lambda r: r.time)}  # the daemon's orjson writes each dataclass's fields

    def access_log(self, client: str, skip: int) -> dict[str, Any]:
        """The client sidecar's access-log entries after the first ``skip``, and how many there are now."""
        with self._lock:
            entries = self._mesh.access_log(client)
        return {"entries": entries[skip:], "count": len(entries)}


def _object_row(o: IstioObject) -> dict[str, Any]:
    return {"kind": o.kind, "namespace": o.metadata.namespace, "name": o.metadata.name,
            "file": o.source.file if o.source else None, "line": o.source.line if o.source else None}



def _deployed(mesh: LocalMesh) -> Topology:
    topology = mesh.topology
    if topology is None:
        raise MeshError("the environment's mesh has no topology deployed")
    return topology
