"""RDS: the RouteConfiguration of one listener port, with istiod's virtual hosts and domains.

Follows ``httproute.go:BuildSidecarOutboundVirtualHosts`` (reference sections 1.3 and 2.1):

- VirtualServices are taken oldest first. On ports other than 80 only those naming a service on
  this port count. A VS whose rules emit no route for this sidecar and port counts for nothing,
  and its hosts fall back to the default route (or to a newer VS).
- Services claimed by a VS get that VS's routes; the rest get the ``default`` route.
- Virtual host names and domains are deduplicated first-come: a second VS for the same host is
  silently dropped for sidecars (#36621), as istiod does.
- VS hosts that are not services on this port get a vhost ``<host>:<port>`` matching just
  ``<host>``; with no service at all they count only on port 80 (istiod's historical hack).
- Vhosts are sorted by name and followed by a catch-all ``*`` vhost. istiod's default is
  ``allow_any`` (passthrough to the original destination); the local mesh has no original
  destination to pass through to, so it uses istiod's REGISTRY_ONLY vhost, ``block_all``: a direct
  502 for any Host that names no known service.
- Domains carry no ClusterIP: local services have none (clients reach them by name).
- ServiceEntry hosts are services too, with the domains istiod gives a host outside the cluster
  domain: the host and, from 1.27, the host with a trailing dot (no short forms).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.istio.model import VirtualService
from harness.istio.semantics import resolve_host
from harness.mesh.local.translate import names
from harness.mesh.local.translate.inputs import Resource
from harness.mesh.local.translate.routes import (
    RouteContext,
    default_route,
    translate_virtual_service,
)
from harness.topology import Client, Service

MAX_DIRECT_RESPONSE_BODY_BYTES = 1024 * 1024
"""istiod raises Envoy's 4 KiB default to 1 MiB, the limit its validation enforces."""

HISTORICAL_NON_SERVICE_PORT = 80


@dataclass(frozen=True)
class _Host:
    """A registry host on this port (a Kubernetes service or a ServiceEntry host) and its domains."""

    fqdn: str
    domains: tuple[str, ...]


@dataclass(frozen=True)
class _Group:
    """``VirtualHostWrapper``: hosts sharing one list of routes."""

    other_hosts: tuple[str, ...]
    services: tuple[_Host, ...]
    routes: tuple[Resource, ...]


def translate_route_config(
    services: Sequence[Service],
    virtual_services: Sequence[VirtualService],
    ctx: RouteContext,
    external_hosts: Sequence[str] = (),
) -> Resource:
    """The RouteConfiguration named after ``ctx.listener_port`` for the services on that port.

    ``virtual_services`` must already be the sidecar's, oldest first (``select.sidecar_virtual_services``);
    ``external_hosts`` are the ServiceEntry hosts with this port, after the services.
    """
    absolute = ctx.behaviour.absolute_fqdn_domain
    hosts = [_Host(s.fqdn, tuple(service_domains(s, ctx.client, absolute))) for s in services]
    hosts += [_Host(h, tuple(external_domains(h, absolute))) for h in external_hosts]
    groups = _groups(hosts, virtual_services, ctx)
    vhosts: list[Resource] = []
    seen_names: set[str] = set()
    seen_domains: set[str] = set()
    for group in groups:
        candidates: list[tuple[str, tuple[str, ...]]] = [(host, (host,)) for host in group.other_hosts]
        candidates += [(h.fqdn, h.domains) for h in group.services]
        for host, domains in candidates:
            name = names.virtual_host(host, ctx.listener_port)
            fresh = [d for d in domains if d.lower() not in seen_domains]
            if name in seen_names or not fresh:
                continue
            seen_names.add(name)
            seen_domains.update(d.lower() for d in fresh)
            vhosts.append(
                {"name": name, "domains": fresh, "routes": list(group.routes), "include_request_attempt_count": True}
            )
    vhosts.sort(key=lambda v: str(v["name"]))
    vhosts.append(_block_all(ctx))
    return {
        "name": names.route_config(ctx.listener_port),
        "virtual_hosts": vhosts,
        "validate_clusters": False,
        "ignore_port_in_host_matching": True,
        "max_direct_response_body_size_bytes": MAX_DIRECT_RESPONSE_BODY_BYTES,
    }


def service_domains(service: Service, client: Client, absolute_fqdn: bool) -> list[str]:
    """``generateVirtualHostDomains`` for a sidecar in ``client.namespace``, without ports (they are ignored).

    Same namespace: FQDN, FQDN + "." (1.27+), ``name``, ``name.ns.svc``, ``name.ns``; another
    namespace: FQDN, FQDN + ".", ``name.ns``, ``name.ns.svc``.
    """
    fqdn = service.fqdn
    out = [fqdn]
    if absolute_fqdn:
        out.append(fqdn + ".")
    short = f"{service.name}.{service.namespace}"
    if service.namespace == client.namespace:
        out += [service.name, f"{short}.svc", short]
    else:
        out += [short, f"{short}.svc"]
    return out


def external_domains(host: str, absolute_fqdn: bool) -> list[str]:
    """``generateVirtualHostDomains`` for a host outside the cluster domain: itself, and with a trailing dot (1.27+)."""
    return [host, host + "."] if absolute_fqdn else [host]


def _groups(services: Sequence[_Host], virtual_services: Sequence[VirtualService], ctx: RouteContext) -> list[_Group]:
    by_fqdn = {s.fqdn: s for s in services}
    groups: list[_Group] = []
    claimed: set[str] = set()
    for vs in virtual_services:
        hosts = [resolve_host(h, vs.metadata.namespace) for h in vs.spec.hosts]
        hosts = [h for h in hosts if "*" not in h]  # wildcard hosts are refused by support.py
        matched = tuple(by_fqdn[h] for h in dict.fromkeys(hosts) if h in by_fqdn)
        if not matched and ctx.listener_port != HISTORICAL_NON_SERVICE_PORT:
            continue
        routes = translate_virtual_service(vs, ctx)
        if not routes:
            continue
        others = tuple(h for h in dict.fromkeys(hosts) if h not in by_fqdn)
        groups.append(_Group(others, matched, tuple(routes)))
        claimed.update(s.fqdn for s in matched)
    for service in services:
        if service.fqdn not in claimed:
            groups.append(_Group((), (service,), (default_route(service.fqdn, ctx),)))
    return groups


def _block_all(ctx: RouteContext) -> Resource:
    """istiod's REGISTRY_ONLY catch-all (``buildCatchAllVirtualHost``), stamped with the config version."""
    return {
        "name": names.BLOCK_ALL,
        "domains": ["*"],
        "routes": [
            {
                "name": names.BLOCK_ALL,
                "match": {"prefix": "/"},
                "direct_response": {"status": 502},
                "response_headers_to_add": ctx.version_header(),
            }
        ],
        "include_request_attempt_count": True,
    }
