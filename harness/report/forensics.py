"""Failure forensics in words, for the terminal and the HTML report: where to look after a failed check.

Works on a check's ``harness.mesh.forensics.Forensics``, as the run made it or as a stored result decodes
(``harness.result``), so the terminal, the pytest failure and the HTML report say the same. Routes read as
``mesh-harness routes`` shows them (``harness.report.routes``); clusters by the policy fields a
DestinationRule sets. Pure.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape

from harness.mesh.forensics import Forensics
from harness.report.routes import describe_action, describe_match, describe_policies, short_cluster

Json = Mapping[str, Any]
_UNLIMITED = 4294967295
_CLUSTER_POLICIES = ("circuit_breakers", "outlier_detection", "common_lb_config", "lb_subset_config",
                     "ring_hash_lb_config", "upstream_connection_options")


def forensics_lines(f: Forensics) -> list[str]:
    """The whole forensics of one check as plain lines: routes, clusters, access log tail, app log tail."""
    lines = [f"what {f.proxy}'s proxy held for {f.host} when the check failed (from its config_dump):"]
    rows = list(route_lines(f.route_configs))
    lines += ["  routes:", *(f"    {r}" for r in rows)] if rows else [f"  no route for {f.host}"]
    clusters = [cluster_line(c) for c in f.clusters]
    lines += ["  clusters:", *(f"    {c}" for c in clusters)] if clusters else ["  no cluster the routes name"]
    lines += _tail(f"  last {len(f.access_log)} lines of its access log:", f.access_log, "  its access log is empty")
    lines += _tail(f"  last {len(f.app_log)} requests the apps received during the check:", f.app_log,
                   "  no app received a request of the check")
    if f.truncated:
        lines.append(f"  (left out to stay short: {', '.join(f.truncated)})")
    return lines


def route_lines(route_configs: Sequence[Json]) -> Iterator[str]:
    """``route config 9080 (version 3), reviews.default.svc.cluster.local:9080 #0: prefix / -> reviews v1 90%, ...``."""
    for entry in route_configs:
        config = entry["route_config"]
        version = f" (version {entry['version_info']})" if entry.get("version_info") else ""
        for vhost in config.get("virtual_hosts", []):
            for i, route in enumerate(vhost.get("routes", [])):
                policies = "; ".join(describe_policies(route))
                yield (f"route config {config.get('name')}{version}, {vhost.get('name')} #{i}: "
                       f"{describe_match(route.get('match', {}))} -> {describe_action(route)}"
                       + (f"; {policies}" if policies else ""))


def cluster_line(cluster: Json) -> str:
    """``outbound|9080|v1|reviews... (reviews v1): EDS, ROUND_ROBIN, circuit_breakers {...}``."""
    name = str(cluster.get("name", ""))
    short = short_cluster(name)
    kind = cluster.get("type") or ("EDS" if "eds_cluster_config" in cluster else "STATIC")
    parts = [str(kind), str(cluster.get("lb_policy", "ROUND_ROBIN"))]
    policies = {key: _set(cluster[key]) for key in _CLUSTER_POLICIES if key in cluster}
    parts += [f"{key} {_compact(value)}" for key, value in policies.items() if value is not None]
    return f"{name}{f' ({short})' if short != name else ''}: {', '.join(parts)}"


def render_forensics(forensics: Sequence[tuple[str, Forensics]], console: Console) -> None:
    """After the table: for each failed check (``"case :: check"``, its forensics), where to look."""
    for title, f in forensics:
        console.print(f"\n[bold]where to look[/] for {escape(title)}", highlight=False)
        for line in forensics_lines(f):
            console.print(line, highlight=False, markup=False, soft_wrap=True)


def _tail(title: str, lines: Sequence[str], empty: str) -> list[str]:
    return [title, *(f"    {line}" for line in lines)] if lines else [empty]


def _set(value: Any) -> Any:
    """What a policy sets beyond "no limit": without Envoy's unlimited thresholds (istiod writes 2^32-1 for an
    unset connection pool field), false flags and what is left empty by dropping them; None if nothing is left."""
    if isinstance(value, Mapping):
        kept = {k: v for k, v in ((k, _set(v)) for k, v in value.items()) if v is not None}
        return kept or None
    if isinstance(value, list):
        items = [v for v in (_set(v) for v in value) if v is not None]
        return items or None
    return None if value is False or (type(value) is int and value == _UNLIMITED) else value


def _compact(value: Any) -> str:
    """A nested Envoy field on one line, bounded (a report must stay readable)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= 200 else text[:199] + "…"
