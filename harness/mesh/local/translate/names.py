"""Every name the translator gives an Envoy resource, and every type URL it puts inside an ``Any``.

One function per kind of name, spelled as istiod spells it (reference istio-semantics.md section
1), so stats, config dumps and access logs read the same on the local mesh as on real Istio.
"""

from __future__ import annotations

DEFAULT_ROUTE = "default"
"""istiod's name for the single route of a host without a VirtualService."""

BLOCK_ALL = "block_all"
"""istiod's catch-all virtual host (and its route) under REGISTRY_ONLY: a direct 502."""

FILTER_HCM = "envoy.filters.network.http_connection_manager"
FILTER_FAULT = "envoy.filters.http.fault"
FILTER_CORS = "envoy.filters.http.cors"
FILTER_ROUTER = "envoy.filters.http.router"
ACCESS_LOG_FILE = "envoy.access_loggers.file"
DNS_RESOLVER_CARES = "envoy.network.dns_resolver.cares"
RETRY_PREVIOUS_HOSTS = "envoy.retry_host_predicates.previous_hosts"
RETRY_PREVIOUS_PRIORITIES = "envoy.retry_priorities.previous_priorities"
HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

_TYPE_PREFIX = "type.googleapis.com/"
TYPE_HCM = _TYPE_PREFIX + "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
TYPE_FAULT = _TYPE_PREFIX + "envoy.extensions.filters.http.fault.v3.HTTPFault"
TYPE_CORS = _TYPE_PREFIX + "envoy.extensions.filters.http.cors.v3.Cors"
TYPE_CORS_POLICY = _TYPE_PREFIX + "envoy.extensions.filters.http.cors.v3.CorsPolicy"
TYPE_ROUTER = _TYPE_PREFIX + "envoy.extensions.filters.http.router.v3.Router"
TYPE_UUID_REQUEST_ID = _TYPE_PREFIX + "envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig"
TYPE_FILE_ACCESS_LOG = _TYPE_PREFIX + "envoy.extensions.access_loggers.file.v3.FileAccessLog"
TYPE_PREVIOUS_HOSTS = _TYPE_PREFIX + "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
TYPE_PREVIOUS_PRIORITIES = (
    _TYPE_PREFIX + "envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig"
)
TYPE_HTTP_PROTOCOL_OPTIONS = _TYPE_PREFIX + HTTP_PROTOCOL_OPTIONS
TYPE_CARES = _TYPE_PREFIX + "envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig"

ANY_PROTO_MODULES = (
    "envoy.extensions.filters.network.http_connection_manager.v3.http_connection_manager_pb2",
    "envoy.extensions.filters.http.fault.v3.fault_pb2",
    "envoy.extensions.filters.http.cors.v3.cors_pb2",
    "envoy.extensions.filters.http.router.v3.router_pb2",
    "envoy.extensions.request_id.uuid.v3.uuid_pb2",
    "envoy.extensions.access_loggers.file.v3.file_pb2",
    "envoy.extensions.retry.host.previous_hosts.v3.previous_hosts_pb2",
    "envoy.extensions.retry.priority.previous_priorities.v3.previous_priorities_config_pb2",
    "envoy.extensions.upstreams.http.v3.http_protocol_options_pb2",
    "envoy.extensions.network.dns_resolver.cares.v3.cares_dns_resolver_pb2",
)
"""Python modules that define every ``@type`` above: import them all before ``json_format.ParseDict``,
or it cannot resolve the ``Any`` fields (reference envoy-lab.md section 2.1)."""


def outbound_cluster(port: int, subset: str | None, fqdn: str) -> str:
    """``outbound|9080|v1|reviews.default.svc.cluster.local`` (``BuildSubsetKey``); no subset leaves the field empty."""
    return f"outbound|{port}|{subset or ''}|{fqdn}"


def parse_outbound_cluster(name: str) -> tuple[int, str, str] | None:
    """``(port, subset, fqdn)`` of an outbound cluster name, or None for any other name."""
    parts = name.split("|")
    if len(parts) != 4 or parts[0] != "outbound" or not parts[1].isdigit():
        return None
    return int(parts[1]), parts[2], parts[3]


def alt_stat_name(cluster: str) -> str:
    """``<cluster>;``: the ``;`` ends the cluster name for Istio's stat-tag regex (1.23+)."""
    return cluster + ";"


def listener(port: int) -> str:
    """istiod's shared HTTP listener for a service port: ``0.0.0.0_9080``."""
    return f"0.0.0.0_{port}"


def hcm_stat_prefix(port: int) -> str:
    """HCM stats live under ``http.outbound_0.0.0.0_9080.``.

    istiod appends the ``;`` delimiter here too; the local mesh leaves it out so that the plain
    Envoy stat names the harness reads stay free of it (real sidecars strip it with Istio's tag regex).
    """
    return f"outbound_{listener(port)}"


def route_config(port: int) -> str:
    """The RDS name every HTTP listener on ``port`` asks for: ``"9080"``."""
    return str(port)


def gateway_route_config(port: int) -> str:
    """The RDS name of a gateway's plain-HTTP servers on ``port``: ``http.80`` (``GatewayRDSRouteName``)."""
    return f"http.{port}"


def gateway_blackhole(port: int) -> str:
    """The vhost of a gateway route config that no VirtualService fills: ``blackhole:80`` (404 NR for all)."""
    return virtual_host("blackhole", port)


def virtual_host(host: str, port: int) -> str:
    """``reviews.default.svc.cluster.local:9080`` (``util.DomainName``)."""
    return f"{host}:{port}"


def route_operation(host_or_vs: str, port: int, path: str) -> str:
    """Decorator operation: ``<fqdn>:<port><path>`` or ``<vs name>:<port><path>`` (``GetRouteOperation``)."""
    return f"{host_or_vs}:{port}{path}"


def config_path(kind: str, namespace: str, name: str) -> str:
    """``/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews`` (``AddConfigInfoMetadata``),
    put in ``metadata.filter_metadata.istio.config`` so a route or cluster can be traced back to its object."""
    kebab = "".join("-" + c.lower() if c.isupper() else c for c in kind).lstrip("-")
    return f"/apis/networking.istio.io/v1/namespaces/{namespace}/{kebab}/{name}"
