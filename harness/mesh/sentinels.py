"""Knowing when sidecars run the applied config: sentinel objects and config_dump checks (pure).

Shared by the meshes where istiod configures the sidecars (kind/cluster, and the local mesh's istiod plane).

Istio has no "applied and ACKed" signal to wait on (``istioctl x wait`` was removed in 1.23 and
Istio's own tests retry the traffic instead: istio-semantics.md 6.4). The harness writes, after
the case's objects, one *sentinel* of each Istio kind it applies, stamped with the apply's
version ``N``: a ServiceEntry for ``<namespace>.sync.mesh-harness.internal`` and
``v<N>.<namespace>.sync.mesh-harness.internal`` (port ``SYNC_PORT``), a VirtualService for both hosts
whose only route is named ``v<N>``, a DestinationRule whose only subset is ``v<N>``, and, where a
gateway is read, a Gateway whose only server host is the ``v<N>`` one. istiod watches each kind in
order, so once a proxy's config_dump holds route ``v<N>`` in the virtual host of the ``v<N>`` host
(which exists only after the ServiceEntry of ``N``, and on a gateway only after the Gateway of ``N``)
and cluster ``outbound|SYNC_PORT|v<N>|<host>``, istiod had every VirtualService, DestinationRule,
ServiceEntry (and Gateway) written before them when it built that push, and the proxy accepted it.
A rejected listener shows as ``error_state`` in the config_dump (Envoy's own message), which the
wait reports as a NACK; a rejected CDS or RDS update leaves none there (its ``update_rejected``
counter grows instead: the meshes read that too).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

SYNC_PORT = 29417
SYNC_NAME = "mesh-harness-sync"
SYNC_LABEL = "mesh-harness.io/sync"
_DOMAIN = "sync.mesh-harness.internal"


def sync_host(namespace: str) -> str:
    return f"{namespace}.{_DOMAIN}"


def versioned_host(namespace: str, version: int) -> str:
    """The sentinel host that exists only from the ServiceEntry (and Gateway) of ``version`` on."""
    return f"v{version}.{sync_host(namespace)}"


def sync_cluster(namespace: str, version: int) -> str:
    """The Envoy cluster istiod builds for the sentinel subset of ``version``."""
    return f"outbound|{SYNC_PORT}|v{version}|{sync_host(namespace)}"


def sentinel_service_entry(namespace: str, version: int, labels: dict[str, str],
                           export_to: Sequence[str] = (".",)) -> dict[str, Any]:
    """The hosts the sentinels route to (the plain one and that of ``version``); visible only in ``namespace``
    (``exportTo: ["."]``) unless
    ``export_to`` says more: ``*`` (one istiod per mesh: the local istiod plane), or the gateway's namespace
    as well (a gateway proxy sees only what is exported to its own namespace)."""
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": SYNC_NAME, "namespace": namespace, "labels": labels},
        "spec": {"hosts": [sync_host(namespace), versioned_host(namespace, version)], "exportTo": list(export_to),
                 "location": "MESH_INTERNAL",
                 "resolution": "STATIC", "ports": [{"number": SYNC_PORT, "name": "http", "protocol": "HTTP"}]},
    }


def sentinel_gateway(namespace: str, version: int, selector: dict[str, str], bind: str | None = None,
                     labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A Gateway server for the sentinel host of ``version``, so that a gateway's route table carries the
    sentinel route only once it has this Gateway (``bind``: the address the local mesh's gateway listens on;
    a pod's gateway listens on every address)."""
    server: dict[str, Any] = {"port": {"number": SYNC_PORT, "name": "http", "protocol": "HTTP"},
                              "hosts": [versioned_host(namespace, version)]}
    if bind is not None:
        server["bind"] = bind
    meta: dict[str, Any] = {"name": SYNC_NAME, "namespace": namespace, **({"labels": labels} if labels else {})}
    return {"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": meta,
            "spec": {"selector": selector, "servers": [server]}}


def sentinels(namespace: str, version: int, labels: dict[str, str], *, export_to: Sequence[str] = (".",),
              gateways: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The VirtualService and DestinationRule stamped with ``version`` (applied after the case's objects).
    ``gateways``: Gateways (``namespace/name``) the VirtualService binds to besides the sidecars."""
    host, tag = sync_host(namespace), f"v{version}"
    meta = {"name": SYNC_NAME, "namespace": namespace, "labels": labels}
    vs_spec: dict[str, Any] = {"hosts": [host, versioned_host(namespace, version)], "exportTo": list(export_to),
                               "http": [{"name": tag, "route": [{"destination": {"host": host}}]}]}
    if gateways:
        vs_spec["gateways"] = ["mesh", *gateways]
    return [
        {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": meta, "spec": vs_spec},
        {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": meta,
         "spec": {"host": host, "exportTo": list(export_to), "subsets": [{"name": tag, "labels": {SYNC_LABEL: tag}}]}},
    ]


@dataclass(frozen=True)
class SyncState:
    """What one sidecar's config_dump says about sentinel version ``version``."""

    has_route: bool
    has_cluster: bool
    rejected: tuple[str, ...]
    """``<xDS type> <resource>: <Envoy's error detail>`` for every resource Envoy holds in error."""

    @property
    def synced(self) -> bool:
        return self.has_route and self.has_cluster


def sync_state(config_dump: dict[str, Any], namespace: str, version: int) -> SyncState:
    """Read a sidecar's ``/config_dump`` (JSON) for the sentinel of ``version`` and for rejected resources."""
    host, tag, cluster = versioned_host(namespace, version), f"v{version}", sync_cluster(namespace, version)
    has_route = has_cluster = False
    rejected: list[str] = []
    for config in config_dump.get("configs", []):
        kind = str(config.get("@type", "")).rsplit(".", 1)[-1]
        if kind == "RoutesConfigDump":
            for entry in config.get("dynamic_route_configs", []):
                for vhost in entry.get("route_config", {}).get("virtual_hosts", []):
                    if _serves(vhost.get("domains", []), host) and any(r.get("name") == tag for r in vhost.get("routes", [])):
                        has_route = True
        elif kind == "ClustersConfigDump":
            has_cluster = has_cluster or any(c.get("cluster", {}).get("name") == cluster
                                             for c in config.get("dynamic_active_clusters", []))
        rejected += [f"{kind.removesuffix('ConfigDump')} {name}: {detail}" for name, detail in _errors(config)]
    return SyncState(has_route, has_cluster, tuple(rejected))


def _serves(domains: list[str], host: str) -> bool:
    """A sidecar's vhost lists the host itself; a gateway's lists ``host`` and ``host:*``."""
    return host in domains or f"{host}:*" in domains


def _errors(node: Any, name: str = "?") -> Iterator[tuple[str, str]]:
    """(resource name, details) of every ``error_state`` in a config dump section."""
    if isinstance(node, dict):
        error = node.get("error_state")
        if isinstance(error, dict):
            yield _resource_name(node, name), str(error.get("details", error))
        for key, value in node.items():
            if key != "error_state":
                yield from _errors(value, _resource_name(node, name))
    elif isinstance(node, list):
        for item in node:
            yield from _errors(item, name)


def _resource_name(node: dict[str, Any], default: str) -> str:
    if isinstance(node.get("name"), str):
        return str(node["name"])
    for key in ("route_config", "cluster", "active_state"):
        inner = node.get(key)
        if isinstance(inner, dict) and isinstance(inner.get("name"), str):
            return str(inner["name"])
    return default
