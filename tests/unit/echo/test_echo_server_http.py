"""The echo app's HTTP/1.1 server in-process, over real loopback sockets: what a server owes HTTP/1.1.

Pipelined requests answered in order (also behind a delayed one), ``Connection: close`` and HTTP/1.0
closing after their reply, HEAD, bodies read and dropped (chunked too), ``100 Continue``, a 400 for what the
parser refuses, an upgrade answered then closed, the query as the knobs see it, and ``stop`` dropping delayed
replies after the grace time. Every read is bounded by ``READ_TIMEOUT_S``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from harness.sample_apps.echo.instance import SHUTDOWN_GRACE_S, EchoInstance
from harness.sample_apps.echo.knobs import Knobs
from harness.sample_apps.echo.requestlog import RequestLog
from harness.sample_apps.echo.server_http import HttpEcho, encode_reply, query_of

READ_TIMEOUT_S = 10.0


@asynccontextmanager
async def echo_server() -> AsyncIterator[tuple[int, EchoInstance]]:
    instance = EchoInstance("reviews", "v1", "reviews-v1-0", Knobs(), RequestLog(1000))
    server = HttpEcho(instance)
    port = await server.start(0)
    try:
        yield port, instance
    finally:
        await server.stop()


async def exchange(port: int, data: bytes) -> tuple[bytes, bool]:
    """Write ``data``, read until the server closes or goes quiet; (what came back, whether it closed)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    out, closed = b"", False
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), 0.5 if out else READ_TIMEOUT_S)
            if not chunk:
                closed = True
                break
            out += chunk
    except TimeoutError:
        pass
    writer.close()
    return out, closed


def paths(data: bytes) -> list[str]:
    return [p.decode() for p in re.findall(rb'"path":"([^"]*)"', data)]


def served(scenario: Callable[[int, EchoInstance], Awaitable[None]]) -> Callable[[], None]:
    """A test from an async scenario against a fresh server (its port and instance), in its own event loop, bounded."""
    def test() -> None:
        async def main() -> None:
            async with echo_server() as (port, instance):
                await asyncio.wait_for(scenario(port, instance), READ_TIMEOUT_S * 2)

        asyncio.run(main())

    test.__name__, test.__doc__ = scenario.__name__, scenario.__doc__
    return test


@served
async def test_identity_trace_headers_and_the_echo_body(port: int, instance: EchoInstance) -> None:
    out, closed = await exchange(port, b"GET /a?b=1 HTTP/1.1\r\nHost: reviews:9080\r\nX-Dup: 1\r\n"
                                       b"x-dup: 2\r\nx-b3-traceid: t1\r\nx-request-id: r1\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and not closed
    for line in (b"x-echo-service: reviews", b"x-echo-version: v1", b"x-echo-instance: reviews-v1-0",
                 b"x-b3-traceid: t1", b"content-type: application/json", f"content-length: {len(body)}".encode()):
        assert line in head.split(b"\r\n"), line
    assert re.search(rb"\r\ndate: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", head)
    echo = json.loads(body)
    assert echo == {"service": "reviews", "version": "v1", "instance": "reviews-v1-0", "method": "GET",
                    "path": "/a?b=1", "host": "reviews:9080", "protocol": "HTTP/1.1",
                    "headers": {"host": "reviews:9080", "x-dup": "1, 2", "x-b3-traceid": "t1",
                                "x-request-id": "r1"}}
    (entry,) = instance.log.since(0, 10).entries
    assert (entry.request_id, entry.method, entry.path, entry.host) == ("r1", "GET", "/a?b=1", "reviews:9080")


@served
async def test_pipelined_requests_are_answered_in_order_also_behind_a_delayed_one(port: int, _instance: EchoInstance) -> None:
    out, closed = await exchange(port, b"GET /one?delay=200ms HTTP/1.1\r\nHost: x\r\n\r\n"
                                       b"GET /two HTTP/1.1\r\nHost: x\r\n\r\n")
    assert paths(out) == ["/one?delay=200ms", "/two"] and not closed


@served
async def test_connection_close_and_http10_close_after_their_reply_and_later_requests_get_none(port: int, _instance: EchoInstance) -> None:
    out, closed = await exchange(port, b"GET /one HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                                       b"GET /two HTTP/1.1\r\nHost: x\r\n\r\n")
    assert paths(out) == ["/one"] and closed and b"\r\nconnection: close\r\n" in out
    out, closed = await exchange(port, b"GET /old HTTP/1.0\r\n\r\n")
    assert paths(out) == ["/old"] and b'"protocol":"HTTP/1.0"' in out and closed
    out, closed = await exchange(port, b"GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert paths(out) == ["/old"] and not closed


@served
async def test_head_gets_the_head_of_get_and_bodies_are_read_and_dropped(port: int, _instance: EchoInstance) -> None:
    out, _ = await exchange(port, b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and body == b"" and b"content-length: " in head
    out, closed = await exchange(port, b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                       b"5\r\nhello\r\n0\r\n\r\nPOST /l HTTP/1.1\r\nHost: x\r\n"
                                       b"Content-Length: 3\r\n\r\nabcGET /after HTTP/1.1\r\nHost: x\r\n\r\n")
    assert paths(out) == ["/c", "/l", "/after"] and not closed


@served
async def test_expect_100_continue_is_answered_before_the_body(port: int, _instance: EchoInstance) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
    interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"ok")
    final = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
    assert final.startswith(b"HTTP/1.1 200 OK")
    writer.close()


@served
async def test_what_the_parser_refuses_gets_400_and_the_connection_closes(port: int, _instance: EchoInstance) -> None:
    out, closed = await exchange(port, b"NOT HTTP AT ALL\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b"bad request: " in out and closed


@served
async def test_an_upgrade_is_answered_as_a_plain_request_then_the_connection_closes(port: int, _instance: EchoInstance) -> None:
    out, closed = await exchange(port, b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                                       b"Upgrade: websocket\r\n\r\n")
    assert paths(out) == ["/ws"] and out.startswith(b"HTTP/1.1 200 OK") and closed


@served
async def test_knobs_from_the_query_and_a_bad_knob_answers_400(port: int, _instance: EchoInstance) -> None:
    out, _ = await exchange(port, b"GET /?status=418&delay=1ms HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 418 I'm a Teapot\r\n")
    out, _ = await exchange(port, b"GET /?status=bad HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request") and "status" in json.loads(body)["error"]


def test_stop_lets_delayed_replies_run_for_the_grace_time_only() -> None:
    async def scenario() -> None:
        instance = EchoInstance("reviews", "v1", "r", Knobs(), RequestLog(10))
        server = HttpEcho(instance)
        port = await server.start(0)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /?delay=60s HTTP/1.1\r\nHost: x\r\n\r\n")
        while not instance.log.since(0, 1).entries:  # bounded by the wait_for below
            await asyncio.sleep(0.001)
        loop = asyncio.get_running_loop()
        began = loop.time()
        await asyncio.wait_for(server.stop(), READ_TIMEOUT_S)
        assert loop.time() - began < SHUTDOWN_GRACE_S + 5.0  # not the 60 s of the delay
        assert await asyncio.wait_for(reader.read(), READ_TIMEOUT_S) == b""  # dropped, unanswered
        writer.close()

    asyncio.run(asyncio.wait_for(scenario(), READ_TIMEOUT_S * 2))


@pytest.mark.parametrize(("target", "query"), [
    ("/", {}), ("/p?status=503", {"status": "503"}), ("/?a=1&a=2", {"a": "1"}), ("/?a=x+y%21", {"a": "x y!"}),
    ("/?flag", {"flag": ""}),
])
def test_query_as_the_knobs_see_it(target: str, query: dict[str, str]) -> None:
    assert dict(query_of(target)) == query


def test_encode_reply() -> None:
    assert encode_reply(503, [("a", "b")], b"xy") == b"HTTP/1.1 503 Service Unavailable\r\na: b\r\ncontent-length: 2\r\n\r\nxy"
    assert encode_reply(599, [], b"z", head_only=True, close=True) == \
        b"HTTP/1.1 599 \r\ncontent-length: 1\r\nconnection: close\r\n\r\n"
