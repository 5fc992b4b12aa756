"""``mesh-harness explain``: the Envoy config the local mesh builds for a case, without running anything.

Endpoints are placeholders (each instance shown as ``<instance>:<service port>``) because real
ports exist only once the apps run; everything else is exactly what the client's sidecar gets.
"""

from __future__ import annotations

import json
from typing import Any

from harness.case import Case
from harness.mesh.local.translate import (
    DEFAULT_ISTIO_VERSION,
    Endpoint,
    EnvoyResources,
    TranslateInput,
    translate,
)

PLACEHOLDER_VERSION = 1


def explain_case(case: Case, *, istio_version: str | None = None, as_json: bool = False) -> str:
    """Routes, clusters and endpoints for the case's first client, as text (or the raw resources as JSON)."""
    topology = case.topology
    endpoints: dict[tuple[str, int], list[Endpoint]] = {}
    for instance, (service_name, version) in topology.instances().items():
        service = topology.service(service_name)
        assert service is not None
        for port in service.ports:
            endpoints.setdefault((service_name, port.number), []).append(
                Endpoint("127.0.0.1", port.number, {"app": service_name, "version": version}, instance)
            )
    resources = translate(TranslateInput(
        topology=topology, client=topology.clients[0], endpoints=endpoints, objects=case.objects,
        config_version=PLACEHOLDER_VERSION, istio_version=istio_version or DEFAULT_ISTIO_VERSION,
    ))
    if as_json:
        return json.dumps({
            "clusters": resources.clusters, "endpoints": resources.endpoints,
            "listeners": resources.listeners, "routes": resources.routes,
        }, indent=2, sort_keys=True)
    return _text(case, resources)


def _text(case: Case, res: EnvoyResources) -> str:
    lines = [f"case {case.name}: Envoy config of sidecar {case.topology.clients[0].node_id}", ""]
    for rc in res.routes:
        lines.append(f"route config {rc['name']!r}")
        for vh in rc.get("virtual_hosts", []):
            lines.append(f"  vhost {vh['name']}  domains: {', '.join(vh.get('domains', []))}")
            for route in vh.get("routes", []):
                lines.append(f"    {route.get('name', '-')}: {_match(route.get('match', {}))} -> {_action(route)}")
        lines.append("")
    lines.append("clusters (endpoints)")
    cla = {c["cluster_name"]: c for c in res.endpoints}
    for cluster in res.clusters:
        hosts = [
            f"{e['endpoint']['address']['socket_address']['address']}:{e['endpoint']['address']['socket_address']['port_value']}"
            for group in cla.get(cluster["name"], {}).get("endpoints", []) for e in group.get("lb_endpoints", [])
        ]
        lines.append(f"  {cluster['name']}  lb {cluster.get('lb_policy', '-')}  ({len(hosts)} endpoints)")
    return "\n".join(lines)


def _match(match: dict[str, Any]) -> str:
    parts = []
    for key in ("prefix", "path", "path_separated_prefix"):
        if key in match:
            parts.append(f"{key} {match[key]}")
    if "safe_regex" in match:
        parts.append(f"regex {match['safe_regex']['regex']}")
    for h in match.get("headers", []):
        parts.append(f"header {h['name']} {_string_match(h)}")
    for q in match.get("query_parameters", []):
        parts.append(f"query {q['name']} {_string_match(q)}")
    if match.get("case_sensitive") is False:
        parts.append("(ignore case)")
    return " and ".join(parts) or "any"


def _string_match(m: dict[str, Any]) -> str:
    negate = "not " if m.get("invert_match") else ""
    if m.get("present_match"):
        return f"{negate}present"
    sm: dict[str, Any] = m.get("string_match", {})
    kind, value = next(iter(sm.items()), ("?", "?"))
    shown: Any = value["regex"] if kind == "safe_regex" and isinstance(value, dict) else value
    return f"{negate}{kind} {shown!r}"


def _action(route: dict[str, Any]) -> str:
    if "direct_response" in route:
        return f"direct response {route['direct_response'].get('status')}"
    action = route.get("route", {})
    if "cluster" in action:
        return str(action["cluster"])
    weighted = action.get("weighted_clusters", {}).get("clusters", [])
    return ", ".join(f"{c['name']} weight {c['weight']}" for c in weighted) or "?"
