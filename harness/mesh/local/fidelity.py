"""The builtin translator measured against real istiod: the differences between two Envoy config_dumps (pure).

``differences(builtin, istiod)`` takes two admin ``/config_dump?include_eds`` bodies of the same
proxy (the client's sidecar, or the ingress gateway) configured by the two control planes of the
local mesh, and returns what differs in what defines traffic behaviour, after normalising away what
may legitimately differ:

- versions, ``version_info``, ``last_updated``; the builtin plane's config-version response header
  on every route; Istio-only metadata (``metadata`` blocks: ``filter_metadata.istio`` and the like);
- listener names and addresses (``0.0.0.0_9080`` on 127.0.0.1:0 vs ``127.A.B.x_9080``): a listener
  is known by its service port, and istiod's per-proxy route config names (``http.80.127.A.B.x``)
  by the builtin's (``http.80``);
- the istiod plane's sentinel service (``*.sync.mesh-harness.internal``, port 29417): its cluster,
  listener, route config and virtual host;
- order Envoy ignores: of clusters, listeners, route configs, virtual hosts, domains, header
  matchers, weighted clusters, mirror policies, status-code lists, headers to add (route order
  inside a virtual host, filter order in a chain and hash-policy order are kept: they matter);
- defaults equal in effect: an empty ``common_lb_config``/``locality``/``health_check_config``
  message is the absent one;
- endpoints: an EDS cluster is its set of instances (an endpoint's ``ip:port`` named through
  ``endpoint_names``, the mesh's ``inventory().ports``), not the ports the apps happened to bind.

What is compared: route configs (configuration-level fields, virtual hosts: domains and fields,
each route by position: match, action, retries, timeouts, mirrors, hash policy, per-filter config,
headers, redirects, direct responses), clusters (all fields but names of stats), endpoint sets,
and each listener's HTTP connection manager (filters, their order and config, with access logs,
stat prefixes, the RDS config source and the telemetry-only filters left out). Listener-level socket settings are not.

Each ``Difference`` has a stable ``id``: ``<kind>:<resource> <field path>``, such as
``route:9080/reviews.default.svc.cluster.local:9080/0 route.retry_policy.retry_on``, with list
positions as ``[i]`` and keyed entries as ``[key]``. A resource present on one side only is one
difference whose other value is ``ABSENT``.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from harness.mesh.sentinels import SYNC_PORT

ABSENT = "<absent>"
"""The value of a side that lacks the resource or field."""

SENTINEL_DOMAIN = "sync.mesh-harness.internal"
CONFIG_VERSION_HEADER = "x-mesh-harness-config-version"
HCM = "envoy.filters.network.http_connection_manager"

_LISTENER_NAME = re.compile(r"^(?:\d{1,3}\.){3}\d{1,3}_(?P<port>\d+)$")
_GATEWAY_ROUTE_NAME = re.compile(r"^(?P<base>https?\.\d+)\.(?:\d{1,3}\.){3}\d{1,3}$")
_DROPPED_KEYS = frozenset({"version_info", "last_updated", "metadata"})
_EMPTY_IS_ABSENT = frozenset({"common_lb_config", "locality", "health_check_config"})
_HCM_IGNORED = ("access_log", "stat_prefix", "rds.config_source")
_CLUSTER_IGNORED = ("alt_stat_name",)
TELEMETRY_FILTERS = frozenset({"envoy.filters.http.grpc_stats", "istio.stats", "istio.metadata_exchange"})
"""HTTP filters that only count (istiod's outbound chain starts with grpc_stats): left out of the comparison."""


@dataclass(frozen=True)
class Difference:
    id: str
    builtin: Any
    istiod: Any

    def __str__(self) -> str:
        return f"{self.id}: builtin {_short(self.builtin)} != istiod {_short(self.istiod)}"


def differences(builtin: Mapping[str, Any], istiod: Mapping[str, Any], *,
                builtin_endpoints: Mapping[str, str] | None = None,
                istiod_endpoints: Mapping[str, str] | None = None) -> list[Difference]:
    """Every difference between two config_dumps of one proxy, sorted by id.

    ``*_endpoints`` name endpoint addresses (``"127.0.0.1:34855"`` -> ``"reviews-v1-0/http"``); an
    address not named is compared as it is."""
    left = normalise(builtin, builtin_endpoints or {})
    right = normalise(istiod, istiod_endpoints or {})
    out: list[Difference] = []
    for key in sorted(left.keys() | right.keys()):
        if key not in left or key not in right:
            out.append(Difference(key, left.get(key, ABSENT), right.get(key, ABSENT)))
        else:
            out.extend(_diff(key, "", left[key], right[key]))
    return sorted(out, key=lambda d: d.id)


def accepted(difference: Difference, patterns: Mapping[str, str]) -> str | None:
    """The reason of the first ``fnmatch`` pattern that ``difference.id`` matches, else None."""
    for pattern, reason in patterns.items():
        if fnmatch.fnmatchcase(difference.id, pattern):
            return reason
    return None


def normalise(dump: Mapping[str, Any], endpoint_names: Mapping[str, str]) -> dict[str, Any]:
    """The comparable resources of a config_dump: ``<kind>:<name>`` -> normalised content."""
    out: dict[str, Any] = {}
    route_configs: dict[str, Any] = {}
    listened: set[str] | None = None  # route config names an active listener uses (None: no listener section)
    for config in dump.get("configs", []):
        kind = str(config.get("@type", "")).rsplit(".", 1)[-1]
        if kind == "ClustersConfigDump":
            for entry in config.get("dynamic_active_clusters", []):
                cluster = entry.get("cluster", {})
                if not _is_sentinel(cluster.get("name", "")):
                    out[f"cluster:{cluster['name']}"] = _cluster(cluster, endpoint_names)
        elif kind == "ListenersConfigDump":
            listened = set()
            for entry in config.get("dynamic_listeners", []):
                # a draining listener (a port the topology dropped) is on its way out: only active ones count
                listener = (entry.get("active_state") or {}).get("listener")
                if listener is not None:
                    managers = _listener(listener)
                    out.update(managers)
                    listened.update(str(m.get("rds", {}).get("route_config_name")) for m in managers.values())
        elif kind == "RoutesConfigDump":
            for entry in config.get("dynamic_route_configs", []):
                route_config = entry.get("route_config", {})
                route_configs[route_config_name(str(route_config.get("name", "")))] = route_config
        elif kind == "EndpointsConfigDump":
            for entry in config.get("dynamic_endpoint_configs", []):
                assignment = entry.get("endpoint_config", {})
                name = assignment.get("cluster_name", "")
                if not _is_sentinel(name):
                    out[f"endpoints:{name}"] = _instances(assignment, endpoint_names)
    for name, route_config in route_configs.items():
        if listened is None or name in listened:  # a draining listener's route config is not compared either
            out.update(_route_config(route_config))
    return out


# --- resources -------------------------------------------------------------------------------------


def _is_sentinel(name: str) -> bool:
    return SENTINEL_DOMAIN in name


def route_config_name(name: str) -> str:
    """istiod's per-proxy gateway route config ``http.80.127.3.4.2`` is the builtin's ``http.80``."""
    m = _GATEWAY_ROUTE_NAME.match(name)
    return m.group("base") if m else name


def _cluster(cluster: Mapping[str, Any], endpoint_names: Mapping[str, str]) -> Any:
    body = {k: v for k, v in cluster.items() if k not in ("name", *_CLUSTER_IGNORED)}
    if "load_assignment" in body:
        body["load_assignment"] = _instances(body["load_assignment"], endpoint_names)
    return _clean(body)


def _listener(listener: Mapping[str, Any]) -> dict[str, Any]:
    m = _LISTENER_NAME.match(str(listener.get("name", "")))
    port = m.group("port") if m else str(listener.get("name", ""))
    if port == str(SYNC_PORT):
        return {}
    managers = [f.get("typed_config", {}) for chain in listener.get("filter_chains", [])
                for f in chain.get("filters", []) if f.get("name") == HCM]
    out: dict[str, Any] = {}
    for i, hcm in enumerate(managers):
        body = json.loads(json.dumps(hcm))
        for path in _HCM_IGNORED:
            _drop_path(body, path)
        rds = body.get("rds")
        if isinstance(rds, dict) and "route_config_name" in rds:
            rds["route_config_name"] = route_config_name(rds["route_config_name"])
        filters = [f for f in body.pop("http_filters", []) if f.get("name") not in TELEMETRY_FILTERS]
        body["http_filter_order"] = [f.get("name") for f in filters]
        body["http_filters"] = {f.get("name"): f.get("typed_config", {}) for f in filters}
        out[f"listener:{port}" + (f"#{i}" if i else "")] = _clean(body)
    return out


def _route_config(config: Mapping[str, Any]) -> dict[str, Any]:
    name = route_config_name(str(config.get("name", "")))
    if name == str(SYNC_PORT) or name.startswith(f"http.{SYNC_PORT}"):
        return {}
    out: dict[str, Any] = {}
    top = {k: v for k, v in config.items() if k not in ("name", "virtual_hosts")}
    out[f"routeconfig:{name}"] = _clean(top)
    for vhost in config.get("virtual_hosts", []):
        vname = str(vhost.get("name", ""))
        if _is_sentinel(vname):
            continue
        fields = {k: v for k, v in vhost.items() if k not in ("name", "routes")}
        out[f"vhost:{name}/{vname}"] = _clean(fields)
        for i, route in enumerate(vhost.get("routes", [])):
            out[f"route:{name}/{vname}/{i}"] = _clean(_unstamped(route))
    return out


def _unstamped(route: Mapping[str, Any]) -> dict[str, Any]:
    """The route without the builtin plane's config-version response header."""
    body = dict(route)
    headers = [h for h in body.get("response_headers_to_add", [])
               if h.get("header", {}).get("key", "").lower() != CONFIG_VERSION_HEADER]
    if headers:
        body["response_headers_to_add"] = headers
    else:
        body.pop("response_headers_to_add", None)
    return body


def _instances(assignment: Mapping[str, Any], endpoint_names: Mapping[str, str]) -> dict[str, Any]:
    """An endpoint set: instance name (or ``ip:port``, or DNS ``host:port``) -> its load-balancing weight."""
    out: dict[str, Any] = {}
    for locality in assignment.get("endpoints", []):
        for lb in locality.get("lb_endpoints", []):
            socket = lb.get("endpoint", {}).get("address", {}).get("socket_address", {})
            address = f"{socket.get('address')}:{socket.get('port_value')}"
            out[endpoint_names.get(address, address)] = lb.get("load_balancing_weight", 1)
    return out


# --- normalising values ----------------------------------------------------------------------------

_SORTED_SCALARS = frozenset({"domains", "retriable_status_codes", "request_headers_to_remove",
                             "response_headers_to_remove", "retriable_request_headers"})
_KEYED_LISTS = {
    "clusters": "name",  # weighted_clusters.clusters
    "thresholds": "priority",  # circuit_breakers.thresholds
}
_UNORDERED_LISTS = frozenset({"headers", "query_parameters", "request_mirror_policies", "request_headers_to_add",
                              "response_headers_to_add", "allow_origin_string_match"})


def _clean(value: Any, key: str = "") -> Any:
    """Drop what never compares; turn lists whose order Envoy ignores into sorted lists or keyed maps."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k in _DROPPED_KEYS:
                continue
            v = _clean(v, k)
            if k in _EMPTY_IS_ABSENT and v == {}:
                continue
            out[k] = v
        return out
    if isinstance(value, list):
        items = [_clean(v) for v in value]
        if key in _SORTED_SCALARS and all(not isinstance(v, dict | list) for v in items):
            return sorted(items, key=str)
        if key in _KEYED_LISTS and all(isinstance(v, dict) for v in items):
            field = _KEYED_LISTS[key]
            return {str(v.get(field, "DEFAULT" if field == "priority" else "")): {k: x for k, x in v.items() if k != field}
                    for v in items}
        if key in _UNORDERED_LISTS:
            return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
        return items
    return value


def _drop_path(body: dict[str, Any], path: str) -> None:
    *parents, last = path.split(".")
    node: Any = body
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(last, None)


# --- diffing ---------------------------------------------------------------------------------------


def _diff(resource: str, path: str, left: Any, right: Any) -> Iterator[Difference]:
    if left == right:
        return
    if isinstance(left, dict) and isinstance(right, dict):
        for k in sorted(left.keys() | right.keys()):
            sub = _join(path, k)
            if k not in left or k not in right:
                yield Difference(f"{resource} {sub}", left.get(k, ABSENT), right.get(k, ABSENT))
            else:
                yield from _diff(resource, sub, left[k], right[k])
        return
    if (isinstance(left, list) and isinstance(right, list) and len(left) == len(right)
            and all(isinstance(v, dict) for v in [*left, *right])):
        for i, (a, b) in enumerate(zip(left, right, strict=True)):
            yield from _diff(resource, f"{path}[{i}]", a, b)
        return
    yield Difference(f"{resource} {path}".rstrip(), left, right)


def _join(path: str, key: str) -> str:
    if "." in key or "|" in key or "/" in key:  # a name, not a field
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _short(value: Any, limit: int = 300) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_differences(found: Iterable[Difference]) -> str:
    return "\n".join(str(d) for d in found)
