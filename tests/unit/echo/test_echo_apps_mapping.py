"""SendSpec <-> /forward JSON and records -> Observation (harness.mesh.echo_client), and knob defaults (harness.mesh.local.apps)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import CaseError, UnsupportedError
from harness.mesh.base import Echo, Observation, SendSpec
from harness.mesh.echo_client import observation_from_json, spec_to_json
from harness.mesh.local.apps import AppProcess
from harness.sample_apps.echo.control import _json
from harness.sample_apps.echo.forward_spec import ForwardRequest


def test_echo_apps_spec_round_trips_through_the_app_validator() -> None:
    spec = SendSpec(url="http://reviews:9080/x", headers=(("x-a", "1"),), body=b"\x00\x01", count=7,
                    concurrency=3, rate=50.0, protocol="grpc", new_connection=True, include_echo=True)
    req = ForwardRequest.from_json(spec_to_json(spec, "127.0.0.1:15001", ["x-b"]))
    assert (req.url, req.connect_to, req.headers, req.body) == (spec.url, "127.0.0.1:15001", spec.headers, spec.body)
    assert (req.count, req.concurrency, req.rate, req.protocol) == (7, 3, 50.0, "grpc")
    assert (req.new_connection, req.include_echo, req.grpc_method) == (True, True, spec.grpc_method)
    assert req.capture_headers == frozenset({"x-b"})
    assert "capture_body" not in spec_to_json(spec, None) and req.capture_body == 0
    assert ForwardRequest.from_json(spec_to_json(SendSpec(url=spec.url, capture_body=4096), None)).capture_body == 4096
    assert "headers_cycle" not in spec_to_json(spec, None) and req.headers_cycle == ()
    cycled = SendSpec(url=spec.url, headers_cycle=(("x-user", ("a", "b")), ("x-k", ("1",))))
    assert ForwardRequest.from_json(spec_to_json(cycled, None)).headers_cycle == cycled.headers_cycle


def test_echo_apps_refuse_http2() -> None:
    with pytest.raises(UnsupportedError, match="send.protocol: protocol 'http2' is not supported"):
        spec_to_json(SendSpec(url="http://reviews:9080/", protocol="http2"), None)


def test_echo_apps_record_to_observation() -> None:
    record = {"index": 3, "request_id": "r", "status": 200, "latency_s": 0.01, "service": "reviews",
              "version": "v2", "instance": "reviews-v2-0", "config_version": "7", "headers": {"server": "envoy"},
              "echo": {"method": "GET", "path": "/", "host": "reviews:9080", "protocol": "HTTP/1.1",
                       "headers": {"a": "b"}, "service": "reviews", "version": "v2", "instance": "reviews-v2-0"}}
    assert observation_from_json(record) == Observation(
        index=3, request_id="r", status=200, latency_s=0.01, service="reviews", version="v2",
        instance="reviews-v2-0", config_version="7", headers={"server": "envoy"},
        echo=Echo("GET", "/", "reviews:9080", "HTTP/1.1", {"a": "b"}))
    local = observation_from_json({"index": 0, "request_id": "r", "status": 0, "latency_s": 0.0, "error": "boom"})
    assert (local.service, local.error, local.echo, local.body) == (None, "boom", None, None)
    reply = observation_from_json({"index": 0, "request_id": "r", "status": 503, "latency_s": 0.0, "body": "no healthy upstream"})
    assert reply.body == "no healthy upstream"


def test_echo_apps_bad_defaults_fail_before_spawning(tmp_path: Path) -> None:
    with pytest.raises(CaseError, match=r"echo app r-1: unknown knob\(s\) \['codes'\]"):
        AppProcess.start("reviews", "v1", "r-1", defaults={"codes": "500"}, workdir=tmp_path)
    with pytest.raises(CaseError, match=r"echo app r-1: bad value for echo knob 'delay': '5'"):
        AppProcess.start("reviews", "v1", "r-1", defaults={"delay": "5"}, workdir=tmp_path)


def test_echo_apps_control_answers_the_json_the_stdlib_wrote() -> None:
    """The control port encodes by orjson: the same JSON values as json.dumps did, keys that are str
    subclasses (aiohttp's header names) or numbers included, floats to the last digit."""
    class Name(str):
        pass

    data = {"records": [{"index": 0, "request_id": "r", "status": 200, "latency_s": 0.0123456789012345,
                         "headers": {Name("server"): "envoy"}, "echo": {"headers": {"a": ["1", "2"]}}}],
            7: "seven", "ok": True, "none": None}
    body = _json(data).body
    assert isinstance(body, bytes)
    assert json.loads(body) == json.loads(json.dumps(data))
