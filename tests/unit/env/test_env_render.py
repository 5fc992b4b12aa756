"""What the environment commands print: the send summary, status tables, log lines; the wire format."""

from __future__ import annotations

import orjson
from rich.console import Console
from rich.table import Table

from harness.env import render, wire
from harness.errors import (
    ConfigRejected,
    Issue,
    MeshError,
    UnsupportedError,
    ValidationError,
)
from harness.mesh.base import Echo, Observation, ReceivedRequest
from harness.mesh.echo_client import observation_from_json


def text_of(table: Table) -> str:
    console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(table)
    console.file.close()
    return console.export_text()


def obs(i: int, status: int = 200, version: str | None = "v1", latency: float = 0.01, **kw: object) -> Observation:
    return Observation(index=i, request_id=f"r-{i}", status=status, latency_s=latency, service="reviews",
                       version=version, **kw)  # type: ignore[arg-type]


def test_env_summary_counts_per_version_and_status_most_frequent_first() -> None:
    batch = [obs(0, headers={"traceparent": "00-abc-def-01"}), obs(1), obs(2, version="v2"),
             obs(3, status=503, version=None, flags=("UF", "URX")), obs(4, status=0, version=None, error="timeout")]
    summary = render.summarize(batch)
    assert summary.rows == (("v1", "200", 2), ("envoy (local reply)", "503 UF,URX", 1),
                            ("no response", "error: timeout", 1), ("v2", "200", 1))
    assert summary.trace == (("x-request-id", "r-0"), ("traceparent", "00-abc-def-01"))
    text = text_of(render.send_table(summary, "http://reviews:9080/"))
    assert "5 requests to http://reviews:9080/" in text
    assert "│ v1                  │ 200            │     2 │ 40.0% │" in text


def test_env_send_shows_the_reported_latency_quantiles_and_the_maximum() -> None:
    summary = render.summarize([obs(i, latency=i / 1000) for i in range(1, 101)])
    assert render.latency_line(summary) == "latency p50 50.0 ms, p90 90.0 ms, p99 99.0 ms, max 100.0 ms"


STATUS = {
    "config_version": 3,
    "services": [{"service": "reviews", "ports": {"http": 9080, "grpc": 7070}, "versions": ["v1", "v2"]}],
    "instances": [{"instance": "reviews-v1-0", "service": "reviews", "version": "v1", "pid": 11, "http": 1001,
                   "grpc": 1002, "control": 1003}],
    "clients": [{"client": "client", "node": "client.default", "app_pid": 12, "control": 2003, "sidecar_pid": 13,
                 "admin": "127.0.0.1:3000", "listeners": {"9080": "127.0.0.1:4000", "7070": "127.0.0.1:4001"}}],
    "objects": [{"kind": "VirtualService", "namespace": "default", "name": "reviews", "file": "vs.yaml", "line": 7}],
}


def test_env_addresses_say_how_to_curl_each_http_port() -> None:
    text = text_of(render.addresses_table(STATUS))
    assert "curl -H 'Host: reviews' http://127.0.0.1:4000/" in text
    assert "grpc with authority reviews:7070" in text
    assert "curl http://127.0.0.1:3000/config_dump" in text
    assert "reviews-v1-0 control" in text and "127.0.0.1:1003" in text


def test_env_status_tables() -> None:
    assert "sidecar-client" in text_of(render.instances_table(STATUS))
    objects = text_of(render.objects_table(STATUS))
    assert "applied objects (config version 3)" in objects and "VirtualService/reviews" in objects and "vs.yaml:7" in objects
    empty = text_of(render.objects_table({**STATUS, "objects": []}))
    assert "(none: traffic spreads over every version)" in empty
    rows = [{"node": "client.default", "type": "RDS", "state": "NACK", "sent": "4", "acked": "3", "note": "bad regex"}]
    assert "│ client.default │ RDS  │ NACK  │ 4    │ 3     │ bad regex │" in text_of(render.sync_table(rows))


def test_env_log_lines() -> None:
    record = ReceivedRequest("r-1", "reviews", "v2", "reviews-v2-0", "GET", "/x", "reviews", {}, 0.25)
    assert render.app_log_line(record).endswith(" reviews-v2-0   GET reviews/x request_id=r-1")
    entry = {"start_time": "T", "method": "GET", "authority": "reviews", "path": "/", "response_code": 503,
             "response_flags": "UF", "upstream_cluster": "outbound|9080|v1|reviews.default.svc.cluster.local;",
             "attempt_count": 3, "duration": 4, "request_id": "r-2"}
    assert render.access_log_line(entry) == ("T GET reviews/ 503 flags=UF upstream=outbound|9080|v1|reviews.default.svc."
                                             "cluster.local attempts=3 4ms request_id=r-2")
    assert render.access_log_line({"raw": "not json"}) == "not json"


def test_env_wire_round_trips_records_and_errors() -> None:
    o = obs(0, flags=("UF",), echo=Echo("GET", "/", "reviews", "HTTP/1.1", {"a": "b"}), headers={"x": "y"})
    assert observation_from_json(orjson.loads(orjson.dumps(o))) == o  # as the daemon writes it, read back
    r = ReceivedRequest("r", "reviews", "v1", "reviews-v1-0", "GET", "/", "reviews", {"h": "v"}, 1.0)
    assert wire.decode_received(orjson.loads(orjson.dumps(r))) == r  # as the daemon writes it
    issues = [Issue("bad", "f.yaml", 3, "VirtualService/r", "spec.http")]
    for exc in (ValidationError(issues), UnsupportedError(issues), ConfigRejected("n", "RouteConfiguration", "4", "boom"),
                MeshError("down")):
        back = wire.decode_error(wire.encode_error(exc))
        assert (type(back), str(back)) == (type(exc), str(exc))
    assert isinstance(wire.decode_error({"error": "Weird", "message": "m"}), MeshError)
