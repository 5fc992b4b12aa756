"""Which Istio fields the local mesh reproduces, and an Issue for every one it does not.

The design rule is "refuse, never ignore" (DESIGN.md): a case that sets a field the translator
does not turn into Envoy config must fail with the field path and the way out, not pass with the
field silently dropped. Each table below lists fields that are *not yet* translated; supporting
one means translating it and deleting its name here. Accepted with only a warning elsewhere (not
refused here): DR ``tls`` (the local mesh is plaintext). ``exportTo`` is translated (``select.py``).

Gateways: plain-text HTTP servers (HTTP, HTTP2, GRPC) are translated (``gateway.py``); TLS,
``bind``, ``defaultEndpoint``, ``targetPort`` and other protocols are not. ServiceEntries: HTTP
ports of MESH_EXTERNAL hosts with resolution STATIC or DNS and one endpoint ``127.0.0.1`` (the
case's external app, ``service_entry.py``); anything else is refused. VirtualService wildcard hosts
are translated on gateways only.

Service ports (``topology_issues``): istiod reads a port's protocol from its name
(``ServicePort.istio_protocol``). Only HTTP, HTTP2, GRPC and GRPC-Web ports are translated; a TCP-like
port (``tcp``, ``https``, ``tls``, ``mongo``, ``mysql``, ``redis``, ``udp``...) would be a TCP proxy on
Istio, where VirtualService ``http`` rules do not apply, and a port with an unknown name (``web``) is
sniffed (HTTP inspector, a per-service route config whose virtual host matches any domain, upstream
HTTP/1.1 or HTTP/2 as the client spoke, TCP fallback). The builtin translator reproduces neither, so
both are refused; the istiod control plane and the kind mesh run them.

Refused by release: fields the emulated Istio does not have yet (its
CRD would reject them), such as ``redirect.prefixRewrite`` before 1.31.

DestinationRule traffic policies are translated (``traffic_policy``, ``connection_pool``,
``outlier``, ``lb``) except ``tunnel`` and ``proxyProtocol``. Refused for good: ``loadBalancer.simple:
PASSTHROUGH`` (no original destination without iptables) and ``localityLbSetting`` ``distribute``,
``failover`` and ``failoverPriority`` (every local endpoint shares one locality, where only
``enabled`` is a no-op).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from pydantic import BaseModel

from harness.errors import Issue
from harness.istio.model import (
    DestinationRule,
    Gateway,
    HTTPMatchRequest,
    IstioObject,
    PortTrafficPolicy,
    ServiceEntry,
    TrafficPolicy,
    VirtualService,
    proto_json_name,
)
from harness.istio.semantics import binds_to_sidecars
from harness.mesh.local.translate.versions import Behaviour
from harness.topology import HTTP_ISTIO_PROTOCOLS, Topology
from harness.yamlsource import PathKey, format_path

NOT_YET = "not supported by the local mesh yet; run with --mesh kind"

UNSUPPORTED_VIRTUAL_SERVICE_FIELDS = ("tls", "tcp")
DELEGATE_NOT_YET = (
    f"delegation is {NOT_YET}; put the delegate's routes in this rule"
)
REDIRECT_PREFIX_REWRITE_FROM = "1.31"
UNSUPPORTED_DESTINATION_RULE_FIELDS = ("workload_selector",)
UNSUPPORTED_TRAFFIC_POLICY_FIELDS = ("tunnel", "proxy_protocol")
UNSUPPORTED_LOAD_BALANCER_FIELDS = ("zone_aware_lb_setting",)
"""Not in Istio 1.30's API."""
UNSUPPORTED_LOCALITY_LB_FIELDS = ("distribute", "failover", "failover_priority")
LOCALITY_LB_NOT_LOCAL = (
    "not reproduced by the local mesh: every local endpoint shares one locality, so only 'enabled' (a no-op "
    "there) is supported; run with --mesh kind"
)
"""istiod puts ``locality_weighted_lb_config`` on the cluster for these and spreads endpoints over localities
and priorities; with one locality and no locality weights that is not a no-op, so they are refused."""
PASSTHROUGH_NOT_LOCAL = (
    "PASSTHROUGH sends to the original destination address, which the local mesh does not have (no "
    "iptables); run with --mesh kind"
)
UNSUPPORTED_HTTP_POOL_FIELDS = ("http2_keep_alive",)
"""Not in Istio 1.30's translation (istiod master only)."""
UNSUPPORTED_OUTLIER_FIELDS = ("outlier_detection_http_error_codes",)
"""Not in Istio 1.30's translation (istiod master only)."""
GATEWAY_PROTOCOLS = ("HTTP", "HTTP2", "GRPC")
"""Server protocols whose plain-text HCM listener the local gateway builds."""
UNSUPPORTED_SERVER_FIELDS = ("bind", "tls", "default_endpoint")
UNSUPPORTED_SERVICE_ENTRY_FIELDS = ("addresses", "workload_selector", "subject_alt_names")
UNSUPPORTED_WORKLOAD_ENTRY_FIELDS = ("ports", "labels", "network", "locality", "weight", "service_account")
SERVICE_ENTRY_RESOLUTIONS = ("STATIC", "DNS")
LOCAL_ENDPOINT = "127.0.0.1"
"""The one ServiceEntry endpoint the local mesh serves: it stands for the case's external app."""
ONE_LOCAL_ENDPOINT = (
    f"the local mesh serves a ServiceEntry host from the case's external app, given as one endpoint "
    f"{{address: {LOCAL_ENDPOINT}}}; run with --mesh kind for other endpoints"
)
JWT_CLAIM_PREFIX = "@request.auth.claims"
"""Header names istiod turns into dynamic-metadata (JWT claim) matchers instead of header matchers."""


def unsupported_issues(objects: Sequence[IstioObject], behaviour: Behaviour | None = None) -> list[Issue]:
    """One Issue per field that is set in ``objects`` but that the local translator does not reproduce.

    With ``behaviour``, fields the emulated Istio release does not have yet are refused too.
    """
    issues: list[Issue] = []
    for obj in objects:
        for path, message in _findings(obj, behaviour):
            file, line = (obj.source.file, obj.source.line_of(path)) if obj.source else (None, None)
            issues.append(Issue(message, file=file, line=line, obj=obj.ref, path=format_path(path)))
    return issues


def topology_issues(topology: Topology) -> list[Issue]:
    """One Issue per port of a mesh service whose Istio protocol is not HTTP-like (``HTTP_ISTIO_PROTOCOLS``).

    External apps are left out: a ServiceEntry's own ``protocol`` decides there (``_service_entry``).
    """
    issues: list[Issue] = []
    for service in topology.services:
        if service.external:
            continue
        for port in service.ports:
            protocol = port.istio_protocol
            if protocol in HTTP_ISTIO_PROTOCOLS:
                continue
            if protocol is None:
                meaning = ("a name Istio does not know, so Istio sniffs the protocol on it (HTTP inspector with a "
                           "per-service route config, TCP fallback)")
            else:
                meaning = (f"protocol {protocol} to Istio, which proxies it as "
                           f"{'UDP' if protocol == 'UDP' else 'TCP'} (VirtualService http rules do not apply)")
            issues.append(Issue(
                f"port {port.name!r} ({port.number}) of service {service.name!r} is {meaning}; the builtin "
                f"translator reproduces HTTP ports only (names http, http2, grpc, grpc-web, or one of them "
                f"followed by -suffix): rename the port, or run with --control-plane istiod or --mesh kind",
                path=f"services.{service.name}.ports",
            ))
    return issues


def _findings(obj: IstioObject, behaviour: Behaviour | None) -> Iterator[tuple[PathKey, str]]:
    if isinstance(obj, VirtualService):
        yield from _virtual_service(obj, behaviour)
    elif isinstance(obj, DestinationRule):
        yield from _destination_rule(obj)
    elif isinstance(obj, Gateway):
        yield from _gateway(obj)
    elif isinstance(obj, ServiceEntry):
        yield from _service_entry(obj)


def _virtual_service(vs: VirtualService, behaviour: Behaviour | None) -> Iterator[tuple[PathKey, str]]:
    spec = vs.spec
    yield from _set_fields(spec, UNSUPPORTED_VIRTUAL_SERVICE_FIELDS, ("spec",))
    if binds_to_sidecars(vs):
        for i, host in enumerate(spec.hosts):
            if "*" in host:
                yield ("spec", "hosts", i), f"wildcard hosts are {NOT_YET} for sidecars (gateways take them)"
    for i, rule in enumerate(spec.http):
        at: PathKey = ("spec", "http", i)
        if rule.delegate is not None:
            yield (*at, "delegate"), DELEGATE_NOT_YET
        too_new = behaviour is not None and not behaviour.redirect_prefix_rewrite
        if too_new and rule.redirect is not None and rule.redirect.prefix_rewrite is not None:
            yield (*at, "redirect", "prefixRewrite"), (
                f"exists only from Istio {REDIRECT_PREFIX_REWRITE_FROM} on, and this mesh emulates an older "
                f"release; use uri, or emulate Istio {REDIRECT_PREFIX_REWRITE_FROM} or later (--istio-version)"
            )
        for k, match in enumerate(rule.match):
            yield from _match(match, (*at, "match", k))


def _match(match: HTTPMatchRequest, at: PathKey) -> Iterator[tuple[PathKey, str]]:
    for field in ("headers", "without_headers"):
        for name in getattr(match, field):
            if name.startswith(JWT_CLAIM_PREFIX):
                yield (*at, proto_json_name(field), name), f"JWT claim matches are {NOT_YET}"


def _gateway(gw: Gateway) -> Iterator[tuple[PathKey, str]]:
    for i, server in enumerate(gw.spec.servers):
        at: PathKey = ("spec", "servers", i)
        yield from _set_fields(server, UNSUPPORTED_SERVER_FIELDS, at)
        if server.port.protocol.upper() not in GATEWAY_PROTOCOLS:
            yield (*at, "port", "protocol"), (
                f"{server.port.protocol} servers are {NOT_YET} (plain-text {', '.join(GATEWAY_PROTOCOLS)} only)"
            )
        yield from _set_fields(server.port, ("target_port",), (*at, "port"))


def _service_entry(se: ServiceEntry) -> Iterator[tuple[PathKey, str]]:
    spec = se.spec
    yield from _set_fields(spec, UNSUPPORTED_SERVICE_ENTRY_FIELDS, ("spec",))
    for i, host in enumerate(spec.hosts):
        if "*" in host:
            yield ("spec", "hosts", i), f"wildcard hosts are {NOT_YET}"
    if spec.location == "MESH_INTERNAL":
        yield ("spec", "location"), f"MESH_INTERNAL (mesh workloads with sidecars behind the entry) is {NOT_YET}"
    if (spec.resolution or "NONE") not in SERVICE_ENTRY_RESOLUTIONS:
        yield ("spec", "resolution"), (
            f"resolution {spec.resolution or 'NONE'} is {NOT_YET} (STATIC and DNS with one endpoint only)"
        )
    for i, port in enumerate(spec.ports):
        if (port.protocol or "").upper() != "HTTP":
            yield ("spec", "ports", i, "protocol"), (
                f"{port.protocol or 'unset (auto-detected)'} ports are {NOT_YET}; use protocol: HTTP"
            )
        yield from _set_fields(port, ("target_port",), ("spec", "ports", i))
    if len(spec.endpoints) != 1:
        yield ("spec", "endpoints"), f"{ONE_LOCAL_ENDPOINT} (got {len(spec.endpoints)} endpoints)"
    for i, endpoint in enumerate(spec.endpoints):
        at: PathKey = ("spec", "endpoints", i)
        if endpoint.address != LOCAL_ENDPOINT:
            yield (*at, "address"), f"{ONE_LOCAL_ENDPOINT} (got {endpoint.address!r})"
        yield from _set_fields(endpoint, UNSUPPORTED_WORKLOAD_ENTRY_FIELDS, at)


def _destination_rule(dr: DestinationRule) -> Iterator[tuple[PathKey, str]]:
    spec = dr.spec
    if "*" in spec.host:
        yield ("spec", "host"), f"wildcard hosts are {NOT_YET}"
    yield from _set_fields(spec, UNSUPPORTED_DESTINATION_RULE_FIELDS, ("spec",))
    yield from _traffic_policy(spec.traffic_policy, ("spec", "trafficPolicy"))
    for i, subset in enumerate(spec.subsets):
        yield from _traffic_policy(subset.traffic_policy, ("spec", "subsets", i, "trafficPolicy"))


def _traffic_policy(policy: TrafficPolicy | None, at: PathKey) -> Iterator[tuple[PathKey, str]]:
    if policy is None:
        return
    yield from _set_fields(policy, UNSUPPORTED_TRAFFIC_POLICY_FIELDS, at)
    yield from _policy_components(policy, at)
    for i, port_policy in enumerate(policy.port_level_settings):
        yield from _policy_components(port_policy, (*at, "portLevelSettings", i))


def _policy_components(policy: TrafficPolicy | PortTrafficPolicy, at: PathKey) -> Iterator[tuple[PathKey, str]]:
    """The parts of loadBalancer, connectionPool and outlierDetection that translate.lb / connection_pool /
    outlier do not reproduce."""
    if (lb := policy.load_balancer) is not None:
        lb_at: PathKey = (*at, "loadBalancer")
        if lb.simple == "PASSTHROUGH":
            yield (*lb_at, "simple"), PASSTHROUGH_NOT_LOCAL
        yield from _set_fields(lb, UNSUPPORTED_LOAD_BALANCER_FIELDS, lb_at)
        if lb.locality_lb_setting is not None:
            locality_at: PathKey = (*lb_at, "localityLbSetting")
            for path, _ in _set_fields(lb.locality_lb_setting, UNSUPPORTED_LOCALITY_LB_FIELDS, locality_at):
                yield path, LOCALITY_LB_NOT_LOCAL
    if policy.connection_pool is not None and (http := policy.connection_pool.http) is not None:
        yield from _set_fields(http, UNSUPPORTED_HTTP_POOL_FIELDS, (*at, "connectionPool", "http"))
    if policy.outlier_detection is not None:
        yield from _set_fields(policy.outlier_detection, UNSUPPORTED_OUTLIER_FIELDS, (*at, "outlierDetection"))


def _set_fields(model: BaseModel, fields: Sequence[str], at: PathKey) -> Iterator[tuple[PathKey, str]]:
    """``(path, NOT_YET)`` for each of ``fields`` that ``model`` sets (not None, not an empty list or map)."""
    for field in fields:
        if _is_set(getattr(model, field)):
            yield (*at, proto_json_name(field)), NOT_YET


def _is_set(value: Any) -> bool:
    return value is not None and value != () and value != {}
