"""ForwardEcho request validation and the batch executor, without sockets."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import pytest

from harness.sample_apps.echo.forward import run_batch
from harness.sample_apps.echo.forward_spec import (
    ForwardRequest,
    ForwardSpecError,
    HeaderSelector,
    Record,
    RequestIds,
    is_selected_header,
)


def test_echo_forward_request_defaults_and_derived_addresses() -> None:
    req = ForwardRequest.from_json({"url": "http://reviews:9080/a/b?x=1", "connect_to": "127.0.0.1:15001",
                                    "body": base64.b64encode(b"hi").decode(), "capture_headers": ["X-Trace"]})
    assert (req.authority, req.target, req.path_and_query) == ("reviews:9080", "127.0.0.1:15001", "/a/b?x=1")
    assert (req.method, req.count, req.concurrency, req.rate, req.protocol, req.body) == ("GET", 1, 16, None, "http", b"hi")
    assert req.capture_headers == frozenset({"x-trace"})
    bare = ForwardRequest.from_json({"url": "http://reviews"})
    assert (bare.target, bare.path_and_query) == ("reviews", "/")


def test_echo_forward_request_reports_every_problem() -> None:
    bad: dict[str, Any] = {
        "url": "ftp://x", "connect_to": "nowhere", "count": 0, "concurrency": True, "rate": -1,
        "protocol": "h3", "timeout_s": 0, "deadline_s": 99999, "headers": [["a"]], "body": "***",
        "grpc_method": "Call", "new_connection": "yes", "extra": 1, "capture_body": -1,
    }
    with pytest.raises(ForwardSpecError) as err:
        ForwardRequest.from_json(bad)
    fields = [p.split(":")[0].split(" ")[0] for p in err.value.problems]
    assert fields == ["unknown", "url", "connect_to", "headers[0]", "body", "count", "concurrency", "rate",
                      "protocol", "timeout_s", "deadline_s", "grpc_method", "capture_body", "new_connection"]
    assert "count: expected an integer 1..1000000, got 0" in err.value.problems
    assert "capture_body: expected bytes of each response body to keep, 0..1048576, got -1" in err.value.problems


def test_echo_forward_request_requires_url() -> None:
    with pytest.raises(ForwardSpecError, match="url: required"):
        ForwardRequest.from_json({})


@pytest.mark.parametrize(("name", "kept"), [("x-envoy-upstream-service-time", True), ("server", True),
                                            ("content-type", True), ("x-custom", True), ("date", False)])
def test_echo_forward_selected_headers(name: str, kept: bool) -> None:
    assert is_selected_header(name, frozenset({"x-custom"})) is kept


def test_echo_forward_header_selector_keeps_what_is_selected_in_order() -> None:
    select = HeaderSelector(frozenset({"x-custom"}))
    headers = {"date": "d", "x-envoy-upstream-service-time": "2", "x-custom": "c", "server": "envoy", "x-other": "o"}
    want = {"x-envoy-upstream-service-time": "2", "x-custom": "c", "server": "envoy"}
    assert select(headers) == want
    assert list(select(headers)) == list(want)  # memoized: the same answer, in the response's order
    assert select({**headers, "x-envoy-upstream-service-time": "9"})["x-envoy-upstream-service-time"] == "9"
    assert select({"content-type": "a", "date": "d"}) == {"content-type": "a"}
    assert select({}) == {}


def test_echo_forward_header_selector_past_its_memo_bound_still_selects() -> None:
    select = HeaderSelector(frozenset())
    for i in range(HeaderSelector.MAX_NAME_SETS + 10):
        assert select({f"x-{i}": "a", "server": "s", f"x-envoy-{i}": "e"}) == {"server": "s", f"x-envoy-{i}": "e"}


def _echo_index(delay: float = 0.0, in_flight: list[int] | None = None) -> Any:
    active = [0]

    async def send(index: int) -> Record:
        active[0] += 1
        if in_flight is not None:
            in_flight.append(active[0])
        await asyncio.sleep(delay)
        active[0] -= 1
        return {"index": index, "request_id": f"r{index}", "status": 200, "latency_s": delay}

    return send


def test_echo_forward_batch_keeps_order_and_bounds_concurrency() -> None:
    in_flight: list[int] = []
    records = asyncio.run(run_batch(50, 4, None, 10.0, _echo_index(0.001, in_flight)))
    assert [r["index"] for r in records] == list(range(50))
    assert max(in_flight) == 4


def test_echo_forward_batch_paces_to_rate() -> None:
    # Request i may not start before i/rate: a hard lower bound on the duration, never flaky.
    started = time.monotonic()
    records = asyncio.run(run_batch(21, 8, 100.0, 10.0, _echo_index()))
    elapsed = time.monotonic() - started
    assert len(records) == 21
    assert 0.2 <= elapsed < 5.0


def test_echo_forward_batch_deadline_reports_in_flight_and_unsent() -> None:
    records = asyncio.run(run_batch(10, 2, None, 0.2, _echo_index(delay=0.15)))
    done = [r for r in records if r["status"] == 200]
    errors = [r for r in records if r["status"] == 0]
    assert [r["index"] for r in done] == [0, 1]  # the first two finish at 0.15s; the next two are cut off at 0.2s
    assert [r["error"] for r in errors[:2]] == ["in flight at the batch deadline of 0.2s"] * 2
    assert {r["error"] for r in errors[2:]} == {"not sent before the batch deadline of 0.2s"}
    assert len(records) == 10


def test_echo_forward_batch_raises_sender_bugs() -> None:
    async def broken(index: int) -> Record:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError, match="bug"):
        asyncio.run(run_batch(3, 2, None, 5.0, broken))


def test_echo_forward_request_refuses_what_cannot_be_sent() -> None:
    bad: dict[str, Any] = {
        "url": "http://reviews:9080/a b", "method": "GET /x",
        "headers": [["bad name", "v"], ["Content-Length", "3"], ["x-ok", "a\r\nx-injected: 1"], ["x-u", "é"]],
    }
    with pytest.raises(ForwardSpecError) as err:
        ForwardRequest.from_json(bad)
    assert err.value.problems == [
        "url: spaces, control and non-ASCII characters must be percent-encoded, got 'http://reviews:9080/a b'",
        "method: expected an HTTP method like 'GET' (letters, digits, no spaces), got 'GET /x'",
        "headers[0]: expected a header name (letters, digits, '-', no spaces or ':'), got 'bad name'",
        "headers[1]: 'Content-Length' is set by ForwardEcho from 'body'; remove the header",
        "headers[2]: the value of 'x-ok' must be ASCII without CR, LF or NUL, got 'a\\r\\nx-injected: 1'",
        "headers[3]: the value of 'x-u' must be ASCII without CR, LF or NUL, got 'é'",
    ]
    with pytest.raises(ForwardSpecError, match=r"url: expected a port 1..65535 after the host, got 'http://r:99999/'"):
        ForwardRequest.from_json({"url": "http://r:99999/"})


def test_echo_forward_request_ids_are_unique_within_and_across_batches() -> None:
    first, second = RequestIds(), RequestIds()
    ids = [first(i) for i in range(1000)] + [second(i) for i in range(1000)]
    assert len(set(ids)) == 2000
    assert first(7).endswith("-7") and len(first(7)) == 26  # 24 hex digits, '-', the index


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"source_ip": "10.0.0.1"}, "source_ip: expected a loopback address like '127.0.0.2' (traffic stays on this machine), got '10.0.0.1'"),
        ({"source_ip": "127.0.0.2", "protocol": "grpc", "url": "grpc://reviews:7070"},
         "source_ip: only HTTP traffic can choose its source address; leave it out for gRPC"),
    ],
)
def test_echo_forward_source_ip_must_be_loopback_and_http(extra: dict[str, str], problem: str) -> None:
    with pytest.raises(ForwardSpecError) as err:
        ForwardRequest.from_json({"url": "http://reviews:9080/", **extra})
    assert problem in err.value.problems


def test_echo_forward_source_ip_is_kept() -> None:
    assert ForwardRequest.from_json({"url": "http://reviews:9080/", "source_ip": "127.0.0.3"}).source_ip == "127.0.0.3"
