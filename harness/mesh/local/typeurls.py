"""Every protobuf type URL the local mesh puts on the wire, spelled once.

As in go-control-plane's ``pkg/resource/v3/resource.go``, nothing else in the harness spells a
type URL: the xDS server, the snapshot, the bootstrap writer and the tests import these names, so
a typo is an ``AttributeError`` at import time instead of a resource Envoy silently ignores.
"""

from __future__ import annotations

from typing import Final

API_PREFIX: Final = "type.googleapis.com/"

# The four xDS resource types the local mesh serves over ADS.
CLUSTER: Final = API_PREFIX + "envoy.config.cluster.v3.Cluster"
ENDPOINT: Final = API_PREFIX + "envoy.config.endpoint.v3.ClusterLoadAssignment"
LISTENER: Final = API_PREFIX + "envoy.config.listener.v3.Listener"
ROUTE: Final = API_PREFIX + "envoy.config.route.v3.RouteConfiguration"

# istiod's push order: clusters (and their endpoints) exist before anything routes to them.
PUSH_ORDER: Final = (CLUSTER, ENDPOINT, LISTENER, ROUTE)

# Types inside ``Any`` fields of the served resources (``"@type"`` in their JSON form).
HTTP_CONNECTION_MANAGER: Final = (
    API_PREFIX + "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
)
TCP_PROXY: Final = API_PREFIX + "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
ROUTER: Final = API_PREFIX + "envoy.extensions.filters.http.router.v3.Router"
FAULT: Final = API_PREFIX + "envoy.extensions.filters.http.fault.v3.HTTPFault"
CORS: Final = API_PREFIX + "envoy.extensions.filters.http.cors.v3.Cors"
CORS_POLICY: Final = API_PREFIX + "envoy.extensions.filters.http.cors.v3.CorsPolicy"
GRPC_STATS: Final = API_PREFIX + "envoy.extensions.filters.http.grpc_stats.v3.FilterConfig"
HTTP_PROTOCOL_OPTIONS: Final = API_PREFIX + "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
FILE_ACCESS_LOG: Final = API_PREFIX + "envoy.extensions.access_loggers.file.v3.FileAccessLog"
STDOUT_ACCESS_LOG: Final = API_PREFIX + "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"
UUID_REQUEST_ID: Final = API_PREFIX + "envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig"
PREVIOUS_HOSTS: Final = (
    API_PREFIX + "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
)

_SHORT_NAMES: Final = {
    CLUSTER: "Cluster",
    ENDPOINT: "ClusterLoadAssignment",
    LISTENER: "Listener",
    ROUTE: "RouteConfiguration",
}


def type_name(type_url: str) -> str:
    """The short name used in messages: ``Cluster``, ``RouteConfiguration``, ... (else the URL's tail)."""
    return _SHORT_NAMES.get(type_url, type_url.rsplit(".", 1)[-1])
