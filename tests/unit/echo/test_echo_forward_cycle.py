"""``headers_cycle``: request ``i`` of one ForwardEcho batch carries the ``i mod n``-th value of each cycled
header, validated like ``headers``; sent over real loopback sockets to in-process echo servers (HTTP and
gRPC), whose echoes show what each request carried."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from harness.mesh.base import SendSpec
from harness.sample_apps.echo.forward import forward
from harness.sample_apps.echo.forward_spec import ForwardRequest, ForwardSpecError, cycled_headers
from harness.sample_apps.echo.instance import EchoInstance
from harness.sample_apps.echo.knobs import Knobs
from harness.sample_apps.echo.requestlog import RequestLog
from harness.sample_apps.echo.server_grpc import GrpcEcho
from harness.sample_apps.echo.server_http import HttpEcho

BOUND_S = 20.0
CYCLE = [["x-user", ["a", "b", "c"]], ["x-k", ["1", "2"]]]


def test_cycled_values_go_round_per_header() -> None:
    req = ForwardRequest.from_json({"url": "http://reviews:9080/", "headers": [["x-fixed", "f"]],
                                    "headers_cycle": CYCLE})
    assert req.headers_cycle == (("x-user", ("a", "b", "c")), ("x-k", ("1", "2")))
    assert [cycled_headers(req.headers_cycle, i) for i in (0, 1, 4, 5)] == [[("x-user", "a"), ("x-k", "1")], [("x-user", "b"), ("x-k", "2")],
                                                     [("x-user", "b"), ("x-k", "1")], [("x-user", "c"), ("x-k", "2")]]
    assert SendSpec(url="http://r/", headers=(("x-fixed", "f"),), headers_cycle=(("x-user", ("a", "b")),)).headers_of(3) \
        == (("x-fixed", "f"), ("x-user", "b"))


@pytest.mark.parametrize(("cycle", "problem"), [
    ([["x-user", []]], "headers_cycle[0]: expected a [name, [value, ...]] pair (at least one value), got ['x-user', []]"),
    ([["x-user", "a"]], "headers_cycle[0]: expected a [name, [value, ...]] pair (at least one value), got ['x-user', 'a']"),
    ([["bad name", ["a"]]], "headers_cycle[0]: expected a header name (letters, digits, '-', no spaces or ':'), got 'bad name'"),
    ([["x-user", ["a", "b\r\nx-injected: 1"]]],
     "headers_cycle[0]: the value of 'x-user' must be ASCII without CR, LF or NUL, got 'b\\r\\nx-injected: 1'"),
    ([["Content-Length", ["1"]]], "headers_cycle[0]: 'Content-Length' is set by ForwardEcho from 'body'; remove the header"),
    ([["X-Fixed", ["a"]]], "headers_cycle[0]: 'X-Fixed' is also in 'headers'; give it in one of them"),
    ([["x-user", ["a"]], ["X-User", ["b"]]], "headers_cycle[1]: 'X-User' is also in 'headers'; give it in one of them"),
    ([["X-Request-Id", ["a"]]], "headers_cycle[0]: 'X-Request-Id' cannot vary per request (ForwardEcho gives each request "
                                "its own request id, and the Host is the URL's, or a fixed one in 'headers')"),
    ([["host", ["a"]]], "headers_cycle[0]: 'host' cannot vary per request (ForwardEcho gives each request "
                        "its own request id, and the Host is the URL's, or a fixed one in 'headers')"),
])
def test_cycle_refusals_name_the_entry(cycle: list[Any], problem: str) -> None:
    with pytest.raises(ForwardSpecError) as err:
        ForwardRequest.from_json({"url": "http://reviews:9080/", "headers": [["x-fixed", "f"]], "headers_cycle": cycle})
    assert err.value.problems == [problem]


async def _echoed(protocol: str, port_of: dict[str, int], **extra: Any) -> list[dict[str, Any]]:
    scheme = "grpc" if protocol == "grpc" else "http"
    req = ForwardRequest.from_json({"url": f"{scheme}://reviews:9080/", "connect_to": f"127.0.0.1:{port_of[protocol]}",
                                    "protocol": protocol, "count": 7, "concurrency": 3, "include_echo": True,
                                    "headers": [["x-fixed", "f"]], "headers_cycle": CYCLE, **extra})
    return await forward(req)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_each_request_carries_its_values_over_real_sockets(protocol: str) -> None:
    async def main() -> list[dict[str, Any]]:
        instance = EchoInstance("reviews", "v1", "reviews-v1-0", Knobs(), RequestLog(1000))
        http, grpc_server = HttpEcho(instance), GrpcEcho(instance)
        ports = {"http": await http.start(0), "grpc": await grpc_server.start(0)}
        try:
            return await asyncio.wait_for(_echoed(protocol, ports), BOUND_S)
        finally:
            await grpc_server.stop()
            await http.stop()

    records = asyncio.run(main())
    assert [r.get("error") for r in records] == [None] * 7
    seen = [(r["echo"]["headers"]["x-fixed"], r["echo"]["headers"]["x-user"], r["echo"]["headers"]["x-k"]) for r in records]
    assert seen == [("f", "abc"[i % 3], "12"[i % 2]) for i in range(7)]
    assert len({r["request_id"] for r in records}) == 7
