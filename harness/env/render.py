"""What the environment commands print: rich tables and log lines, from the daemon's answers. Pure.

``summarize`` turns one ``send`` batch into counts per (version, status) and latency quantiles,
like a tiny Fortio; the other functions lay out ``status``, ``routes`` and log records.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.table import Table

from harness.mesh.base import Observation, ReceivedRequest
from harness.result import LATENCY_QUANTILES, nearest_rank
from harness.sample_apps.echo import fields

if TYPE_CHECKING:  # routes imports the translator; only `mesh-harness routes` needs it
    from harness.report.routes import RouteRow

SEND_QUANTILES = {**LATENCY_QUANTILES, "max": 1.0}
"""What ``send`` shows of a batch's latencies: the quantiles every report shows, and the slowest request."""


@dataclass(frozen=True)
class SendSummary:
    rows: tuple[tuple[str, str, int], ...]
    """(version, status, count), most frequent first."""
    n: int
    latency_s: Mapping[str, float]
    """``SEND_QUANTILES`` by name, in seconds; empty without requests."""
    trace: tuple[tuple[str, str], ...]
    """Trace ids of the first request: the request id, then any trace header it came back with."""


def outcome(o: Observation) -> tuple[str, str]:
    """(who answered, what status) of one request; Envoy's response flags (``UF``, ``URX``) join the status."""
    version = o.version or ("no response" if o.status == 0 else "envoy (local reply)")
    status = str(o.status) if o.status else f"error: {o.error or 'no response'}"
    if o.grpc_status is not None:
        status += f" grpc {o.grpc_status}"
    if o.flags:
        status += f" {','.join(o.flags)}"
    return version, status


def summarize(observations: Sequence[Observation]) -> SendSummary:
    counts = Counter(outcome(o) for o in observations)
    rows = tuple((v, s, n) for (v, s), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    latencies = sorted(o.latency_s for o in observations)
    trace: tuple[tuple[str, str], ...] = ()
    if observations:
        first = observations[0]
        extra = [(h, first.headers[h]) for h in fields.TRACE_HEADERS
                 if h in first.headers and h != fields.REQUEST_ID_HEADER]
        trace = ((fields.REQUEST_ID_HEADER, first.request_id), *extra)
    return SendSummary(rows, len(observations), {name: nearest_rank(latencies, q) for name, q in SEND_QUANTILES.items()} if latencies else {},
                       trace)


def send_table(summary: SendSummary, url: str) -> Table:
    table = Table(title=f"{summary.n} requests to {url}")
    for column, justify in (("version", "left"), ("status", "left"), ("count", "right"), ("share", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for version, status, count in summary.rows:
        table.add_row(version, status, str(count), f"{100 * count / summary.n:.1f}%")
    return table


def latency_line(summary: SendSummary) -> str:
    return "latency " + ", ".join(f"{name} {1000 * v:.1f} ms" for name, v in summary.latency_s.items())


def addresses_table(status: Mapping[str, Any]) -> Table:
    """How to reach the mesh: each service port through the client's sidecar, admin, app control ports."""
    table = Table(title="how to reach it", show_header=True)
    for column in ("what", "address", "try"):
        table.add_column(column, overflow="fold")
    for client in status["clients"]:
        for service in status["services"]:
            for port_name, port in service["ports"].items():
                bound = client["listeners"].get(str(port))
                host = f"Host: {service['service']}"
                hint = (f"curl -H '{host}' http://{bound}/" if port_name.partition("-")[0] in ("http", "http2")
                        else f"{port_name} with authority {service['service']}:{port}")
                table.add_row(f"{service['service']}:{port} via {client['client']}'s sidecar", str(bound), hint)
        table.add_row(f"{client['client']}'s Envoy admin", client["admin"], f"curl http://{client['admin']}/config_dump")
        table.add_row(f"{client['client']} app control", f"127.0.0.1:{client['control']}", "")
    for i in status["instances"]:
        table.add_row(f"{i['instance']} control", f"127.0.0.1:{i['control']}", f"curl http://127.0.0.1:{i['control']}/log")
    return table


def instances_table(status: Mapping[str, Any]) -> Table:
    table = Table(title="workloads")
    for column in ("workload", "service", "version", "pid", "http", "grpc", "control"):
        table.add_column(column)
    for i in status["instances"]:
        table.add_row(i["instance"], i["service"], i["version"], str(i["pid"]), str(i["http"]), str(i["grpc"]),
                      str(i["control"]))
    for c in status["clients"]:
        table.add_row(c["client"], "(client)", "", str(c["app_pid"]), "", "", str(c["control"]))
        listeners = ", ".join(f"{p}->{b}" for p, b in c["listeners"].items())
        table.add_row(f"sidecar-{c['client']}", "(Envoy)", "", str(c["sidecar_pid"]), listeners, "", f"admin {c['admin']}")
    return table


def objects_table(status: Mapping[str, Any]) -> Table:
    table = Table(title=f"applied objects (config version {status['config_version']})")
    for column in ("object", "namespace", "from"):
        table.add_column(column)
    for o in status["objects"]:
        where = f"{o['file']}:{o['line']}" if o.get("file") else ""
        table.add_row(f"{o['kind']}/{o['name']}", o["namespace"], where)
    if not status["objects"]:
        table.add_row("(none: traffic spreads over every version)", "", "")
    return table


def sync_table(rows: Sequence[Mapping[str, str]]) -> Table:
    table = Table(title="proxy sync (like istioctl proxy-status)")
    for column in ("proxy", "type", "state", "sent", "acked", "note"):
        table.add_column(column, overflow="fold")
    style = {"SYNCED": "green", "STALE": "yellow", "NACK": "bold red", "NOT SENT": "yellow"}
    for r in rows:
        table.add_row(r["node"], r["type"], f"[{style.get(r['state'], '')}]{r['state']}[/]", r["sent"], r["acked"], r["note"])
    return table


def routes_table(rows: Sequence[RouteRow], service: str, client: str) -> Table:
    table = Table(title=f"routes for {service} in {client}'s Envoy (from its config_dump)", show_lines=True)
    for column in ("port", "#", "match", "goes to", "policies"):
        table.add_column(column, overflow="fold")
    for r in rows:
        label = f"{r.index}" + (f" {r.name}" if r.name else "")
        table.add_row(f"{r.route_config} (v{r.version})", label, r.match, r.action, "\n".join(r.policies))
    return table


def app_log_line(r: ReceivedRequest) -> str:
    return f"{_clock(r.time)} {r.instance:<14} {r.method} {r.host}{r.path} request_id={r.request_id}"


def access_log_line(e: Mapping[str, Any]) -> str:
    """One Envoy access-log entry (``translate/listeners.ACCESS_LOG_FORMAT``) on one line."""
    if "raw" in e:
        return str(e["raw"])
    flags = e.get("response_flags") or "-"
    cluster = str(e.get("upstream_cluster") or "-").rstrip(";")
    return (f"{e.get('start_time', '')} {e.get('method', '')} {e.get('authority', '')}{e.get('path', '')} "
            f"{e.get('response_code', '')} flags={flags} upstream={cluster} "
            f"attempts={e.get('attempt_count', '')} {e.get('duration', '')}ms request_id={e.get('request_id', '')}")


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int((t % 1) * 1000):03d}"
