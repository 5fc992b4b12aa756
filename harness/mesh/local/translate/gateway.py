"""The ingress gateway's listeners and routes, as istiod builds them (``pilot/pkg/networking/core/gateway.go``).

For every port of a plain-HTTP server of the Gateways that select the gateway workload
(``buildGatewayListeners``): one listener ``0.0.0.0_<port>`` whose HCM asks for RDS ``http.<port>``,
with the gateway's HCM settings (``buildGatewayConnectionManager``: ``use_remote_address``,
``server_name: istio-envoy``, client cert details SANITIZE_SET). Servers of several Gateways on one
port share that listener and route config.

``http.<port>`` (``buildGatewayHTTPRouteConfig``): for each server, each VirtualService bound to its
Gateway (oldest first) contributes its routes to one virtual host per host in both the server's
hosts (``[namespace/]host``, seen from the VirtualService's namespace) and the VirtualService's: the
more specific of the two names it. Unlike sidecars, gateways *merge*: a second VirtualService for a
host appends its routes. Virtual hosts with the very same routes are then collapsed into one
(``collapseDuplicateRoutes``, first name alphabetically), catch-all routes move to the end
(``SortVHostRoutes``), and virtual hosts are sorted by name. With no virtual host at all, the
config holds ``blackhole:<port>`` with no routes: 404 NR for everything. There is no default route
and no catch-all: a Host no server exposes gets 404 NR too.

The local gateway binds 127.0.0.1 port 0 (as the sidecars do) and is reached by reading the bound
port back. One deliberate difference: ``preserve_external_request_id``. With ``use_remote_address``
every caller of the gateway is external, so Envoy would replace the caller's ``x-request-id``; the
harness joins each request to the gateway's access log (and app logs) by the id its caller sent, so
the gateway keeps it. Nothing a policy does depends on the id's value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from harness.istio.model import Gateway, IstioObject, Server, VirtualService
from harness.istio.semantics import resolve_host
from harness.mesh.local.translate import names
from harness.mesh.local.translate.inputs import Resource
from harness.mesh.local.translate.listeners import translate_listener
from harness.mesh.local.translate.matches import is_catch_all
from harness.mesh.local.translate.routes import RouteContext, translate_virtual_service
from harness.mesh.local.translate.select import gateway_name, gateway_virtual_services
from harness.mesh.local.translate.vhosts import MAX_DIRECT_RESPONSE_BODY_BYTES

GATEWAY_SERVER_NAME = "istio-envoy"


@dataclass(frozen=True)
class GatewayServer:
    """A server of a Gateway, with the Gateway's ``namespace/name``."""

    gateway: str
    namespace: str
    server: Server


def servers_by_port(gateways: Sequence[Gateway]) -> dict[int, list[GatewayServer]]:
    """Every server of ``gateways`` (already those selecting this workload, oldest first), by port."""
    out: dict[int, list[GatewayServer]] = {}
    for gw in gateways:
        for server in gw.spec.servers:
            out.setdefault(server.port.number, []).append(GatewayServer(gateway_name(gw), gw.metadata.namespace, server))
    return dict(sorted(out.items()))


def translate_gateway_listener(port: int, access_log_path: str | None, proxy_100_continue: bool = False) -> Resource:
    """The sidecar's HTTP listener for ``port`` with the gateway's RDS name and HCM settings."""
    listener = translate_listener(port, access_log_path, proxy_100_continue)
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["rds"]["route_config_name"] = names.gateway_route_config(port)
    hcm.update(
        use_remote_address=True,
        server_name=GATEWAY_SERVER_NAME,
        forward_client_cert_details="SANITIZE_SET",
        set_current_client_cert_details={"subject": True, "cert": True, "dns": True, "uri": True},
        http_protocol_options={},
        preserve_external_request_id=True,
    )
    return listener


@dataclass
class _VirtualHost:
    host: str
    routes: list[Resource]
    sources: list[tuple[str, str]] = field(default_factory=list)
    """Which (gateway, VirtualService) route lists make up ``routes``: equal lists collapse (istiod compares pointers)."""


def translate_gateway_route_config(
    port: int,
    servers: Sequence[GatewayServer],
    objects: Sequence[IstioObject],
    context: Callable[[str], RouteContext],
) -> Resource:
    """``http.<port>`` for ``servers`` on ``port``; ``context(gateway)`` is the RouteContext for one Gateway."""
    built: dict[tuple[str, str], list[Resource]] = {}
    vhosts: dict[str, _VirtualHost] = {}
    for entry in servers:
        for vs in gateway_virtual_services(objects, entry.gateway, context(entry.gateway).client.namespace):
            hosts = _intersection(_server_hosts(entry, vs.metadata.namespace), _vs_hosts(vs))
            if not hosts:
                continue
            key = (entry.gateway, f"{vs.metadata.name}/{vs.metadata.namespace}")
            if key not in built:
                built[key] = translate_virtual_service(vs, context(entry.gateway))
            routes = built[key]
            if not routes:
                continue  # istiod: "no routes matched", the VirtualService is skipped
            for host in hosts:
                vhost = vhosts.setdefault(host.lower(), _VirtualHost(host.lower(), []))
                vhost.routes.extend(routes)
                vhost.sources.append(key)
    if not vhosts:
        virtual_hosts: list[Resource] = [{"name": names.gateway_blackhole(port), "domains": ["*"], "routes": []}]
    else:
        virtual_hosts = [_virtual_host(domains, vhost.routes, port) for domains, vhost in _collapsed(vhosts)]
        virtual_hosts.sort(key=lambda v: str(v["name"]))
    return {
        "name": names.gateway_route_config(port),
        "virtual_hosts": virtual_hosts,
        "validate_clusters": False,
        "ignore_port_in_host_matching": True,
        "max_direct_response_body_size_bytes": MAX_DIRECT_RESPONSE_BODY_BYTES,
    }


def _virtual_host(domains: list[str], routes: list[Resource], port: int) -> Resource:
    ordered = [r for r in routes if not is_catch_all(r["match"])] + [r for r in routes if is_catch_all(r["match"])]
    return {
        "name": names.virtual_host(domains[0], port),
        "domains": domains,
        "routes": ordered,
        "include_request_attempt_count": True,
    }


def _collapsed(vhosts: dict[str, _VirtualHost]) -> list[tuple[list[str], _VirtualHost]]:
    """``collapseDuplicateRoutes``: hosts whose routes come from the same lists share the first one's vhost."""
    primary: dict[tuple[tuple[str, str], ...], tuple[list[str], _VirtualHost]] = {}
    for host in sorted(vhosts):
        vhost = vhosts[host]
        key = tuple(vhost.sources)
        if key in primary:
            primary[key][0].append(host)
        else:
            primary[key] = ([host], vhost)
    return list(primary.values())


def _server_hosts(entry: GatewayServer, vs_namespace: str) -> list[str]:
    """``host.NamesForNamespace``: the server's hosts visible to a VirtualService in ``vs_namespace``
    (``./host`` is in the Gateway's namespace, a host without a namespace in any)."""
    out = []
    for host in entry.server.hosts:
        namespace, _, name = host.rpartition("/")
        namespace = entry.namespace if namespace == "." else namespace
        if not namespace or namespace in ("*", vs_namespace):
            out.append(name)
    return out


def _vs_hosts(vs: VirtualService) -> list[str]:
    return [resolve_host(h, vs.metadata.namespace) for h in vs.spec.hosts]


def _intersection(server_hosts: Sequence[str], vs_hosts: Sequence[str]) -> list[str]:
    """``host.Names.Intersection``: for each pair where one covers the other, the narrower one, once."""
    out: list[str] = []
    for a in server_hosts:
        for b in vs_hosts:
            narrower = a if _subset_of(a, b) else b if _subset_of(b, a) else None
            if narrower is not None and narrower not in out:
                out.append(narrower)
    return out


def _subset_of(a: str, b: str) -> bool:
    """Whether every name ``a`` matches is matched by ``b`` (``host.Name.SubsetOf``, wildcards ``*`` and ``*.x``)."""
    a, b = a.lower(), b.lower()
    if a == b or b == "*":
        return True
    if not b.startswith("*"):
        return False
    suffix = b[1:]
    return a[1:].endswith(suffix) if a.startswith("*") else a.endswith(suffix)
