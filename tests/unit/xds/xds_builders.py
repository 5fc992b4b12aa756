"""Hand-made Envoy resources for the xDS tests and bench (go-control-plane ``resource.go`` style).

They are the shapes of reference/envoy-lab.md section 7: EDS clusters over ADS, a listener whose
HTTP connection manager loads its routes over RDS, and a route that tags every response with
``x-route-version`` so a test can tell which config served it. They never depend on the translator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.mesh.local import typeurls
from harness.mesh.local.snapshot import Snapshot

ROUTE_NAME = "local_route"
LISTENER_NAME = "http"
ROUTE_VERSION_HEADER = "x-route-version"

Json = dict[str, Any]


@dataclass(frozen=True)
class Resources:
    """Shaped like the translator's ``EnvoyResources``."""

    clusters: tuple[Json, ...]
    endpoints: tuple[Json, ...]
    listeners: tuple[Json, ...]
    routes: tuple[Json, ...]


def make_cluster(name: str) -> Json:
    return {
        "name": name,
        "type": "EDS",
        "connect_timeout": "1s",
        "eds_cluster_config": {"eds_config": {"ads": {}, "resource_api_version": "V3"}},
    }


def make_endpoints(cluster: str, port: int) -> Json:
    address = {"socket_address": {"address": "127.0.0.1", "port_value": port}}
    return {"cluster_name": cluster, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address}}]}]}


def make_listener(route_name: str = ROUTE_NAME, *, port: int = 0, access_log: str | None = None) -> Json:
    hcm: Json = {
        "@type": typeurls.HTTP_CONNECTION_MANAGER,
        "stat_prefix": "outbound",
        "codec_type": "AUTO",
        "rds": {"route_config_name": route_name, "config_source": {"ads": {}, "resource_api_version": "V3"}},
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": typeurls.ROUTER}}],
    }
    if access_log is not None:
        hcm["access_log"] = [
            {
                "name": "envoy.access_loggers.file",
                "typed_config": {
                    "@type": typeurls.FILE_ACCESS_LOG,
                    "path": access_log,
                    "log_format": {"text_format_source": {"inline_string": "%REQ(:PATH)% %RESPONSE_CODE%\n"}},
                },
            }
        ]
    return {
        "name": LISTENER_NAME,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}],
    }


def make_route(tag: str, clusters: Sequence[str], *, name: str = ROUTE_NAME, regex: str | None = None) -> Json:
    """All traffic to ``clusters`` (weighted evenly), each response tagged ``x-route-version: tag``.

    ``regex`` adds a leading safe_regex route; an invalid one makes Envoy NACK the config.
    """
    weighted = {"clusters": [{"name": cluster, "weight": 1} for cluster in clusters]}
    routes: list[Json] = [{"match": {"prefix": "/"}, "route": {"weighted_clusters": weighted}}]
    if regex is not None:
        routes.insert(0, {"match": {"safe_regex": {"regex": regex}}, "route": {"cluster": clusters[0]}})
    return {
        "name": name,
        "virtual_hosts": [
            {
                "name": "all",
                "domains": ["*"],
                "routes": routes,
                "response_headers_to_add": [{"header": {"key": ROUTE_VERSION_HEADER, "value": tag}}],
            }
        ],
    }


def make_resources(
    tag: str,
    ports: dict[str, int],
    *,
    listener_port: int = 0,
    regex: str | None = None,
    access_log: str | None = None,
) -> Resources:
    """One EDS cluster per entry of ``ports`` (cluster name -> upstream port), one listener, one route."""
    names = sorted(ports)
    return Resources(
        clusters=tuple(make_cluster(name) for name in names),
        endpoints=tuple(make_endpoints(name, ports[name]) for name in names),
        listeners=(make_listener(port=listener_port, access_log=access_log),),
        routes=(make_route(tag, names, regex=regex),),
    )


def make_snapshot(version: str, clusters: Sequence[str] = ("v1", "v2"), *, tag: str | None = None) -> Snapshot:
    ports = {name: 18000 + index for index, name in enumerate(clusters)}
    return Snapshot.from_resources(version, make_resources(tag or version, ports))
