"""Failure forensics: what the client's proxy held for a host when a check failed, and the logs around it.

A failed check says *that* the traffic was wrong; the next question is *why*, and the answer is
usually in the proxy: which routes it had for the host (a missing subset, a wrong weight, a match
that never fires) and which clusters those routes send to. So when a check fails the runner asks
the mesh, before the config is reverted, for the proxy's ``/config_dump`` (Envoy's own view, on
either control plane and on kind alike) and the tail of its access log, and reads the answering apps'
request logs; this module keeps only what concerns the host, bounded in size. Pure.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from harness.mesh.base import ReceivedRequest

Json = Mapping[str, Any]

#: Bounds that keep a report readable whatever the config: route configs, clusters and log lines kept.
MAX_ROUTE_CONFIGS = 4
MAX_ROUTES = 40
MAX_CLUSTERS = 12
LOG_LINES = 10
LINE_CHARS = 300
#: Access-log fields worth a glance (the local mesh's and Istio's JSON access logs both name them so).
ACCESS_LOG_FIELDS = ("start_time", "method", "authority", "path", "response_code", "response_flags",
                     "upstream_cluster", "upstream_host", "request_id")


@runtime_checkable
class Inspectable(Protocol):
    """A mesh that can show a proxy's own state (the local and kind meshes; an attached environment cannot)."""

    def config_dump(self, workload: str) -> dict[str, Any]:
        """The workload's proxy ``/config_dump`` (Envoy admin)."""

    def access_log_tail(self, workload: str, lines: int) -> list[str]:
        """The last ``lines`` lines of the workload's proxy access log, as written."""


@dataclass(frozen=True)
class Forensics:
    """Where to look after a failed check: the proxy's routes and clusters for ``host``, and log tails.

    ``route_configs`` are Envoy's route configurations with only the virtual hosts serving ``host``;
    ``clusters`` the clusters their routes send (or mirror) to. ``access_log`` ends the proxy's access
    log; ``app_log`` lists what the apps received during the check (one line per request, last ones).
    ``truncated`` says what was cut to stay within the bounds above.
    """

    proxy: str
    host: str
    route_configs: tuple[Json, ...]
    clusters: tuple[Json, ...]
    access_log: tuple[str, ...]
    app_log: tuple[str, ...]
    truncated: tuple[str, ...] = ()


def serves(vhost: Json, host: str) -> bool:
    """A virtual host serves ``host`` when a domain is the host, or the host with a port."""
    domains = {str(d) for d in vhost.get("domains", [])}
    return host in domains or any(d.partition(":")[0] == host for d in domains)


def gather(proxy: str, host: str, port: int | None, config_dump: Json, access_log: Sequence[str],
           received: Iterable[ReceivedRequest]) -> Forensics:
    """The forensics of one failed check from the proxy's config dump and the logs read at that moment.
    With ``port``, only the route configuration of that port when the proxy has one named after it (istiod
    and the builtin translator name HTTP route configurations by port)."""
    truncated: list[str] = []
    configs = _host_route_configs(config_dump, host)
    of_port = [c for c in configs if c["route_config"]["name"] == str(port)]
    configs = of_port or configs
    if len(configs) > MAX_ROUTE_CONFIGS:
        truncated.append(f"{len(configs) - MAX_ROUTE_CONFIGS} more route configurations")
        configs = configs[:MAX_ROUTE_CONFIGS]
    routes = sum(len(v.get("routes", [])) for c in configs for v in c["route_config"]["virtual_hosts"])
    if routes > MAX_ROUTES:
        truncated.append(f"{routes - MAX_ROUTES} more routes")
        configs = _cut_routes(configs, MAX_ROUTES)
    wanted = referenced_clusters(configs)
    clusters = [c for c in _clusters(config_dump) if str(c.get("name")) in wanted]
    if len(clusters) > MAX_CLUSTERS:
        truncated.append(f"{len(clusters) - MAX_CLUSTERS} more clusters")
        clusters = clusters[:MAX_CLUSTERS]
    app_lines = [received_line(r) for r in sorted(received, key=lambda r: r.time)]
    return Forensics(
        proxy=proxy, host=host, route_configs=tuple(configs), clusters=tuple(clusters),
        access_log=tuple(_clip(access_line(line)) for line in list(access_log)[-LOG_LINES:]),
        app_log=tuple(_clip(line) for line in app_lines[-LOG_LINES:]),
        truncated=tuple(truncated),
    )


def received_line(r: ReceivedRequest) -> str:
    """``reviews-v1-0 GET reviews:9080/ x-request-id=…``: one request as an app received it."""
    return f"{r.instance} {r.method} {r.host}{r.path} x-request-id={r.request_id}"


def access_line(line: str) -> str:
    """An access-log line with only the fields worth a glance, ``key=value``; a line that is not a JSON object
    (after a pod log's timestamp prefix, if any) as it is."""
    start = line.find("{")
    try:
        entry = json.loads(line[start:]) if start >= 0 else None
    except ValueError:
        entry = None
    if not isinstance(entry, dict):
        return line
    return " ".join(f"{key}={entry[key]}" for key in ACCESS_LOG_FIELDS if entry.get(key) not in (None, ""))


def referenced_clusters(route_configs: Iterable[Json]) -> list[str]:
    """Cluster names the routes send to, split to, or mirror to, in order of first mention."""
    names: dict[str, None] = {}
    for config in route_configs:
        for vhost in config.get("route_config", {}).get("virtual_hosts", []):
            for route in vhost.get("routes", []):
                action = route.get("route", {})
                if "cluster" in action:
                    names[str(action["cluster"])] = None
                for weighted in action.get("weighted_clusters", {}).get("clusters", []):
                    names[str(weighted.get("name"))] = None
                for mirror in action.get("request_mirror_policies", []):
                    names[str(mirror.get("cluster"))] = None
    return list(names)


def _host_route_configs(config_dump: Json, host: str) -> list[Json]:
    out: list[Json] = []
    for section in config_dump.get("configs", []):
        if not str(section.get("@type", "")).endswith(".RoutesConfigDump"):
            continue
        for entry in section.get("dynamic_route_configs", []):
            config = entry.get("route_config", {})
            vhosts = [v for v in config.get("virtual_hosts", []) if serves(v, host)]
            if vhosts:
                out.append({"version_info": entry.get("version_info", ""),
                            "route_config": {"name": config.get("name", ""), "virtual_hosts": vhosts}})
    return sorted(out, key=lambda e: str(e["route_config"]["name"]))


def _cut_routes(configs: Sequence[Json], limit: int) -> list[Json]:
    out: list[Json] = []
    left = limit
    for config in configs:
        vhosts = []
        for vhost in config["route_config"]["virtual_hosts"]:
            routes = list(vhost.get("routes", []))[:max(left, 0)]
            left -= len(routes)
            vhosts.append({**vhost, "routes": routes})
        out.append({**config, "route_config": {**config["route_config"], "virtual_hosts": vhosts}})
    return out


def _clusters(config_dump: Json) -> list[Json]:
    out: list[Json] = []
    for section in config_dump.get("configs", []):
        if str(section.get("@type", "")).endswith(".ClustersConfigDump"):
            for key in ("static_clusters", "dynamic_active_clusters", "dynamic_warming_clusters"):
                out.extend(entry.get("cluster", {}) for entry in section.get(key, []))
    return out


def _clip(line: str) -> str:
    line = line.rstrip("\n")
    return line if len(line) <= LINE_CHARS else line[:LINE_CHARS - 1] + "…"
