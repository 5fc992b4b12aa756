"""``mesh-harness explain``: the Envoy config the local mesh builds for a case, without running anything.

Endpoints are placeholders (each instance shown as ``<instance>:<service port>``) because real
ports exist only once the apps run; everything else is exactly what the client's sidecar gets.
"""

from __future__ import annotations

import json

from harness.case import Case
from harness.mesh.local.translate import (
    DEFAULT_ISTIO_VERSION,
    Endpoint,
    EnvoyResources,
    TranslateInput,
    translate,
)
from harness.report.forensics import cluster_line
from harness.report.routes import describe_action, describe_match, describe_policies

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
    """Routes in the words of ``mesh-harness routes`` (match, action, and every policy: timeouts, retries,
    faults, mirrors, rewrites), clusters with their policies, as ``--json`` has them in full."""
    lines = [f"case {case.name}: Envoy config of sidecar {case.topology.clients[0].node_id}", ""]
    for rc in res.routes:
        lines.append(f"route config {rc['name']!r}")
        for vh in rc.get("virtual_hosts", []):
            lines.append(f"  vhost {vh['name']}  domains: {', '.join(vh.get('domains', []))}")
            for route in vh.get("routes", []):
                policies = "".join(f"; {p}" for p in describe_policies(route))
                lines.append(f"    {route.get('name', '-')}: {describe_match(route.get('match', {}))} -> "
                             f"{describe_action(route)}{policies}")
        lines.append("")
    lines.append("clusters (endpoints)")
    cla = {c["cluster_name"]: c for c in res.endpoints}
    for cluster in res.clusters:
        hosts = [e for group in cla.get(cluster["name"], {}).get("endpoints", []) for e in group.get("lb_endpoints", [])]
        lines.append(f"  {cluster_line(cluster)}  ({len(hosts)} endpoints)")
    return "\n".join(lines)
