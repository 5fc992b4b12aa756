"""The raw HTTP/1.1 client: the parser without sockets, the pool and the sender against scripted peers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from harness.sample_apps.echo import http1
from harness.sample_apps.echo.forward_http import HttpSender, host_and_port
from harness.sample_apps.echo.forward_spec import ForwardRequest
from harness.sample_apps.echo.http1 import (
    ConnectError,
    ConnectionClosed,
    Http1Pool,
    ProtocolError,
    RequestTemplate,
    RequestTimeout,
    Response,
    ResponseParser,
    ResponseTooLarge,
)

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\nx-a: 2\r\n\r\nhi"
CHUNKED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5;name=value\r\nhello\r\n1 ; ext\r\n,\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\nX-More: m\r\n\r\n")


def parse(*pieces: bytes, head_only: bool = False, eof: bool = False, max_head_bytes: int = http1.MAX_HEAD_BYTES,
          max_body_bytes: int = http1.MAX_BODY_BYTES) -> Response:
    parser = ResponseParser(head_only=head_only, max_head_bytes=max_head_bytes, max_body_bytes=max_body_bytes)
    for piece in pieces:
        response = parser.feed(piece)
        if response is not None:
            return response
    assert eof, "the response did not complete"
    return parser.feed_eof()


def one_byte_at_a_time(data: bytes) -> list[bytes]:
    return [data[i:i + 1] for i in range(len(data))]


# --- parser ---------------------------------------------------------------------------------------------------------

def test_echo_http1_content_length_headers_lowercased_and_joined() -> None:
    resp = parse(OK)
    assert resp == Response(200, "OK", {"content-length": "2", "x-a": "1, 2"}, b"hi", True)
    assert parse(*one_byte_at_a_time(OK)) == resp


def test_echo_http1_chunked_with_extensions_and_trailers_in_split_reads() -> None:
    resp = parse(CHUNKED)
    assert (resp.status, resp.body, resp.keep_alive) == (200, b"hello, world", True)
    assert "x-trailer" not in resp.headers  # trailers are read and dropped
    assert parse(*one_byte_at_a_time(CHUNKED)) == resp
    assert parse(CHUNKED[:60], CHUNKED[60:]) == resp


def test_echo_http1_read_to_close_and_its_connection_is_not_reused() -> None:
    resp = parse(b"HTTP/1.1 200 OK\r\n\r\nall", b" of it", eof=True)
    assert (resp.body, resp.keep_alive) == (b"all of it", False)
    gzip_only = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz", eof=True)
    assert (gzip_only.body, gzip_only.keep_alive) == (b"zz", False)


def test_echo_http1_header_lines_parse_the_same_from_the_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http1, "_HEADER_MEMO_SIZE", 3)
    memo: http1.HeaderMemo = {}
    long_value = "v" * (http1._HEADER_MEMO_MAX_LEN + 1)
    data = (b"HTTP/1.1 200 OK\r\nServer:  envoy \t\r\nX-A: 1\r\nx-a: 2\r\nX-Long: " + long_value.encode()
            + b"\r\nContent-Length: 0\r\n\r\n")
    want = {"server": "envoy", "x-a": "1, 2", "x-long": long_value, "content-length": "0"}
    for _ in range(3):  # the first parse fills the memo (and empties it once, past its size), later ones read it
        assert ResponseParser(header_memo=memo).feed(data) == Response(200, "OK", want, b"", True)
        assert 0 < len(memo) <= 3
        assert all(len(line) <= http1._HEADER_MEMO_MAX_LEN for line in memo)
    with pytest.raises(ProtocolError, match="bad header line 'no colon'"):  # a bad line is never memoized
        ResponseParser(header_memo=memo).feed(b"HTTP/1.1 200 OK\r\nServer: envoy\r\nno colon\r\n\r\n")
    assert "no colon" not in memo


@pytest.mark.parametrize(("head", "head_only"), [
    (b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", False),
    (b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", False),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", True),
])
def test_echo_http1_responses_without_body(head: bytes, head_only: bool) -> None:
    resp = parse(head, head_only=head_only)
    assert (resp.body, resp.keep_alive) == (b"", True)


def test_echo_http1_interim_responses_are_skipped() -> None:
    resp = parse(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + OK)
    assert (resp.status, resp.body, "link" in resp.headers) == (200, b"hi", False)
    with pytest.raises(ProtocolError, match="more than 8 interim 1xx responses"):
        parse(b"HTTP/1.1 100 Continue\r\n\r\n" * 9 + OK)
    with pytest.raises(ProtocolError, match="101 Switching Protocols to a request that asked for no upgrade"):
        parse(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")


@pytest.mark.parametrize(("head", "want"), [
    (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", False),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", False),
    (b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", True),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nextra", False),  # bytes nobody asked for
    (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", False),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0, 0\r\n\r\n", True),
])
def test_echo_http1_keep_alive(head: bytes, want: bool) -> None:
    assert parse(head).keep_alive is want


@pytest.mark.parametrize(("data", "message"), [
    (b"HTTP/2 200 OK\r\n\r\n", "malformed response: bad status line 'HTTP/2 200 OK'"),
    (b"HTTP/1.1 2000 OK\r\n\r\n", "bad status line 'HTTP/1.1 2000 OK'"),
    (b"HTTP/1.1 2x0 OK\r\n\r\n", "bad status line"),
    (b"SSH-2.0-OpenSSH\r\n\r\n", "bad status line 'SSH-2.0-OpenSSH'"),
    (b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "bad header line 'no colon'"),
    (b"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n", "bad header line ' folded: x'"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n", "bad Content-Length '1, 2'"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "bad Content-Length '-1'"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk-size line b'zz'"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY", "chunk data not followed by CRLF"),
])
def test_echo_http1_malformed_responses(data: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(data)


def test_echo_http1_limits() -> None:
    with pytest.raises(ResponseTooLarge, match="response head larger than 64 bytes"):
        parse(b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 100, max_head_bytes=64)
    with pytest.raises(ResponseTooLarge, match="response head larger than 64 bytes"):
        parse(b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 100 + b"\r\n\r\n", max_head_bytes=64)
    with pytest.raises(ResponseTooLarge, match="response body of 11 bytes is larger than the 10 bytes ForwardEcho reads"):
        parse(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", max_body_bytes=10)
    with pytest.raises(ResponseTooLarge, match="chunked response body larger than the 10 bytes"):
        parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\n", max_body_bytes=10)
    with pytest.raises(ResponseTooLarge, match="response body larger than the 10 bytes"):
        parse(b"HTTP/1.1 200 OK\r\n\r\n", b"x" * 11, max_body_bytes=10)
    with pytest.raises(ResponseTooLarge, match="chunked trailers larger than 64 bytes"):
        parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + b"X-T: t\r\n" * 10, max_head_bytes=64)
    assert parse(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n" + b"x" * 10, max_body_bytes=10).body == b"x" * 10


def test_echo_http1_eof_before_the_response_is_complete() -> None:
    parser = ResponseParser()
    with pytest.raises(ConnectionClosed, match="^connection closed by the peer before any response byte$"):
        parser.feed_eof()
    parser = ResponseParser()
    assert parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab") is None
    with pytest.raises(ConnectionClosed, match="after 40 bytes, before the response was complete"):
        parser.feed_eof()


def test_echo_http1_request_template() -> None:
    get = RequestTemplate("GET", "/a?b=1", [("Host", "reviews:9080"), ("x-user", "alice")])
    assert get.render() == b"GET /a?b=1 HTTP/1.1\r\nHost: reviews:9080\r\nx-user: alice\r\n\r\n"
    assert get.render("x-request-id: r1\r\n") == (
        b"GET /a?b=1 HTTP/1.1\r\nHost: reviews:9080\r\nx-user: alice\r\nx-request-id: r1\r\n\r\n")
    post = RequestTemplate("POST", "/", [("Host", "h")])
    assert post.render() == b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"
    put = RequestTemplate("PUT", "/", [("Host", "h")], b"body")
    assert put.render() == b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody"


def test_echo_http1_host_and_port() -> None:
    assert host_and_port("127.0.0.1:15001") == ("127.0.0.1", 15001)
    assert host_and_port("reviews") == ("reviews", 80)
    assert host_and_port("[::1]:8080") == ("::1", 8080)


# --- pool, against scripted peers -----------------------------------------------------------------------------------

class Peer:
    """What a scripted server saw: connections accepted and raw requests received."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[bytes] = []
        self.open = 0
        self.max_open = 0
        self.hang_up = False  # a script sets it to close the connection right after its reply


@asynccontextmanager
async def serve(script: Callable[[Peer, int, bytes], bytes | None]) -> AsyncIterator[tuple[int, Peer]]:
    """A peer on 127.0.0.1 answering request n of a connection with ``script(peer, n, request)``; None = close."""
    peer = Peer()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer.connections += 1
        peer.open += 1
        peer.max_open = max(peer.max_open, peer.open)
        try:
            for n in range(1000):
                try:
                    request = await read_request(reader)
                except (asyncio.IncompleteReadError, ConnectionError):  # the client closed or aborted
                    return
                peer.requests.append(request)
                answer = script(peer, n, request)
                if answer is None:
                    return
                writer.write(answer)
                await writer.drain()
                if peer.hang_up:
                    return
        finally:
            peer.open -= 1
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], peer
    finally:
        server.close()
        await asyncio.wait_for(server.wait_closed(), 5)


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0)
    return head + await reader.readexactly(length)


def ok(peer: Peer, n: int, request: bytes) -> bytes:
    return OK


GET = RequestTemplate("GET", "/", [("Host", "reviews:9080")]).render()


def test_echo_http1_pool_reuses_one_connection() -> None:
    async def main() -> tuple[list[Response], Peer, int]:
        async with serve(ok) as (port, peer), Http1Pool("127.0.0.1", port, limit=4) as pool:
            responses = [await pool.request(GET, method="GET", timeout_s=5) for _ in range(5)]
            return responses, peer, pool.connections_made

    responses, peer, made = asyncio.run(main())
    assert {r.body for r in responses} == {b"hi"}
    assert (made, peer.connections, len(peer.requests)) == (1, 1, 5)


def test_echo_http1_pool_runs_on_uvloop() -> None:
    """uvloop's transports are no ``asyncio.Transport`` subclasses; the pool must not care which loop runs it."""
    uvloop = pytest.importorskip("uvloop")

    async def main() -> list[int]:
        async with serve(ok) as (port, _), Http1Pool("127.0.0.1", port, limit=2) as pool:
            return [(await pool.request(GET, method="GET", timeout_s=5)).status for _ in range(3)]

    assert uvloop.run(main()) == [200, 200, 200]


def test_echo_http1_pool_opens_at_most_limit_connections() -> None:
    async def main() -> Peer:
        async with serve(ok) as (port, peer), Http1Pool("127.0.0.1", port, limit=3) as pool:
            await asyncio.gather(*(pool.request(GET, method="GET", timeout_s=5) for _ in range(30)))
            return peer

    peer = asyncio.run(main())
    assert peer.max_open <= 3 and len(peer.requests) == 30


def test_echo_http1_pool_new_connection_per_request() -> None:
    request = RequestTemplate("GET", "/", [("Host", "h"), ("Connection", "close")]).render()

    async def main() -> tuple[Peer, int]:
        async with serve(ok) as (port, peer), Http1Pool("127.0.0.1", port, limit=2, new_connection=True) as pool:
            for _ in range(3):
                await pool.request(request, method="GET", timeout_s=5)
            return peer, pool.connections_made

    peer, made = asyncio.run(main())
    assert (made, peer.connections) == (3, 3)


def test_echo_http1_pool_discards_a_connection_after_an_error() -> None:
    def bad_first(peer: Peer, n: int, request: bytes) -> bytes:
        return b"HTTP/9 oops\r\n\r\n" if len(peer.requests) == 1 else OK

    async def main() -> tuple[str, Response, int]:
        async with serve(bad_first) as (port, peer), Http1Pool("127.0.0.1", port, limit=1) as pool:
            with pytest.raises(ProtocolError) as err:
                await pool.request(GET, method="GET", timeout_s=5)
            return str(err.value), await pool.request(GET, method="GET", timeout_s=5), peer.connections

    message, after, connections = asyncio.run(main())
    assert message == "malformed response: bad status line 'HTTP/9 oops' (want 'HTTP/1.1 <3-digit status> <reason>')"
    assert (after.status, connections) == (200, 2)


def test_echo_http1_pool_timeout_discards_the_connection() -> None:
    def silent_first(peer: Peer, n: int, request: bytes) -> bytes:
        return b"" if len(peer.requests) == 1 else OK

    async def main() -> tuple[str, float, int, int]:
        async with serve(silent_first) as (port, peer), Http1Pool("127.0.0.1", port, limit=1) as pool:
            loop = asyncio.get_running_loop()
            began = loop.time()
            with pytest.raises(RequestTimeout) as err:
                await pool.request(GET, method="GET", timeout_s=0.1)
            waited = loop.time() - began
            status = (await pool.request(GET, method="GET", timeout_s=5)).status
            return str(err.value), waited, status, peer.connections

    message, waited, status, connections = asyncio.run(main())
    assert (message, status, connections) == ("timeout after 0.1s", 200, 2)
    assert waited >= 0.1  # the timer cannot fire early: a hard lower bound


class _Exchanges:
    """Stands in for the pool's connections: which exchanges (parsers) still wait, which were expired."""

    def __init__(self) -> None:
        self.waiting: set[ResponseParser] = set()
        self.expired: list[tuple[ResponseParser, float, float]] = []
        self.loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> ResponseParser:
        parser = ResponseParser()
        self.waiting.add(parser)
        return parser

    def is_waiting_for(self, parser: ResponseParser) -> bool:
        return parser in self.waiting

    def expire(self, parser: ResponseParser, timeout_s: float) -> None:
        if parser in self.waiting:
            self.waiting.discard(parser)
            assert self.loop is not None
            self.expired.append((parser, timeout_s, self.loop.time()))


def test_echo_http1_timeouts_expire_in_deadline_order_and_never_answered_ones() -> None:
    exchanges = _Exchanges()
    late, early, answered = exchanges.start(), exchanges.start(), exchanges.start()

    async def main() -> float:
        loop = exchanges.loop = asyncio.get_running_loop()
        timeouts = http1._Timeouts(loop, limit=4)
        conn: Any = exchanges
        now = loop.time()
        timeouts.watch(now + 0.12, conn, late, 0.12)
        timeouts.watch(now + 0.04, conn, early, 0.04)  # watched later, due first: re-arms the timer
        timeouts.watch(now + 0.02, conn, answered, 0.02)
        exchanges.waiting.discard(answered)  # its response came in time
        await asyncio.sleep(0.2)
        timeouts.close()
        return now

    now = asyncio.run(main())
    assert [(parser, timeout_s) for parser, timeout_s, _ in exchanges.expired] == [(early, 0.04), (late, 0.12)]
    early_by = time.get_clock_info("monotonic").resolution  # how early asyncio itself may run a timer
    assert exchanges.expired[0][2] >= now + 0.04 - early_by and exchanges.expired[1][2] >= now + 0.12 - early_by


def test_echo_http1_timeouts_stay_bounded_behind_a_slow_request() -> None:
    exchanges = _Exchanges()

    async def main() -> int:
        exchanges.loop = asyncio.get_running_loop()
        timeouts = http1._Timeouts(exchanges.loop, limit=2)
        conn: Any = exchanges
        now = exchanges.loop.time()
        timeouts.watch(now + 60, conn, exchanges.start(), 60)  # a slow one stays on top of the heap
        most = 0
        for _ in range(1000):
            parser = exchanges.start()
            timeouts.watch(now + 61, conn, parser, 61)
            exchanges.waiting.discard(parser)  # answered at once
            most = max(most, len(timeouts._heap))
        timeouts.close()
        return most

    assert asyncio.run(main()) <= http1._Timeouts._SLACK * 2 + 64 + 1
    assert exchanges.expired == []


def test_echo_http1_pool_connection_refused() -> None:
    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

        async def main() -> None:
            async with Http1Pool("127.0.0.1", port, limit=1) as pool:
                await pool.request(GET, method="GET", timeout_s=5)

        with pytest.raises(ConnectError, match=f"^cannot connect to 127.0.0.1:{port}: Connection refused$"):
            asyncio.run(main())


def test_echo_http1_pool_peer_closes_before_the_response_is_complete() -> None:
    def cut(peer: Peer, n: int, request: bytes) -> bytes:
        peer.hang_up = True
        return OK[:20]

    async def failure(script: Callable[[Peer, int, bytes], bytes | None]) -> str:
        async with serve(script) as (port, _), Http1Pool("127.0.0.1", port, limit=1) as pool:
            with pytest.raises(ConnectionClosed) as err:
                await pool.request(GET, method="GET", timeout_s=5)
            return str(err.value)

    assert asyncio.run(failure(lambda peer, n, request: None)) == (
        "connection closed by the peer before any response byte")
    assert asyncio.run(failure(cut)) == (
        "connection closed by the peer after 20 bytes, before the response was complete")


def test_echo_http1_pool_resends_an_idempotent_request_once_after_a_stale_connection() -> None:
    def close_second_on_first(peer: Peer, n: int, request: bytes) -> bytes | None:
        return None if (peer.connections == 1 and n == 1) else OK  # connection 1 dies when reused

    async def run(method: str) -> tuple[list[Any], int]:
        request = RequestTemplate(method, "/", [("Host", "h")]).render()
        async with serve(close_second_on_first) as (port, peer), Http1Pool("127.0.0.1", port, limit=1) as pool:
            outcomes: list[Any] = []
            for _ in range(2):
                try:
                    outcomes.append((await pool.request(request, method=method, timeout_s=5)).status)
                except ConnectionClosed as exc:
                    outcomes.append(str(exc))
            return outcomes, peer.connections

    assert asyncio.run(run("GET")) == ([200, 200], 2)
    assert asyncio.run(run("POST")) == ([200, "connection closed by the peer before any response byte"], 1)


def test_echo_http1_pool_close_leaves_no_connection_open() -> None:
    def hold(peer: Peer, n: int, request: bytes) -> bytes:
        return b""  # never answers: the requests stay in flight until the pool closes

    async def main() -> Peer:
        async with serve(hold) as (port, peer):
            pool = Http1Pool("127.0.0.1", port, limit=3)
            tasks = [asyncio.create_task(pool.request(GET, method="GET", timeout_s=30)) for _ in range(3)]
            for _ in range(1000):  # bounded: until the peer has every request (at most 10 s)
                if len(peer.requests) == 3:
                    break
                await asyncio.sleep(0.01)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await pool.close()
            for _ in range(1000):  # bounded: until the peer saw every connection end (at most 10 s)
                if peer.open == 0:
                    break
                await asyncio.sleep(0.01)
            return peer

    peer = asyncio.run(main())
    assert (len(peer.requests), peer.open) == (3, 0)


# --- the ForwardEcho sender -----------------------------------------------------------------------------------------

def _forward(port: int, **extra: Any) -> ForwardRequest:
    return ForwardRequest.from_json({"url": "http://reviews:9080/p?q=1", "connect_to": f"127.0.0.1:{port}", **extra})


async def _send_all(request: ForwardRequest, n: int) -> list[dict[str, Any]]:
    async with HttpSender(request) as sender:
        return [await sender.send(i) for i in range(n)]


def test_echo_http1_sender_writes_the_request_and_builds_the_record() -> None:
    echo = b'{"method": "POST", "path": "/p?q=1", "host": "reviews:9080", "protocol": "HTTP/1.1", "headers": {}}'

    def reply(peer: Peer, n: int, request: bytes) -> bytes:
        rid = next(line.split(b": ")[1] for line in request.split(b"\r\n") if line.startswith(b"x-request-id"))
        return (b"HTTP/1.1 201 Created\r\nx-echo-service: reviews\r\nx-echo-version: v2\r\nx-echo-instance: r-0\r\n"
                b"x-mesh-harness-config-version: 7\r\nx-request-id: " + rid + b"\r\nServer: envoy\r\n"
                b"x-envoy-upstream-service-time: 1\r\nx-mine: a\r\nx-mine: b\r\nDate: today\r\n"
                b"Content-Length: %d\r\n\r\n" % len(echo) + echo)

    async def main() -> tuple[list[dict[str, Any]], Peer]:
        async with serve(reply) as (port, peer):
            request = _forward(port, method="POST", body="Ym9keQ==", headers=[["x-user", "alice"]],
                               include_echo=True, capture_headers=["X-Mine"])
            return await _send_all(request, 2), peer

    records, peer = asyncio.run(main())
    rid = records[0]["request_id"]
    assert peer.requests[0] == (b"POST /p?q=1 HTTP/1.1\r\nHost: reviews:9080\r\nx-user: alice\r\nContent-Length: 4\r\n"
                                b"x-request-id: " + rid.encode() + b"\r\n\r\nbody")
    assert records[1]["request_id"] != rid and rid.endswith("-0") and records[1]["request_id"].endswith("-1")
    assert records[0].pop("latency_s") > 0
    assert records[0] == {
        "index": 0, "request_id": rid, "status": 201, "service": "reviews", "version": "v2", "instance": "r-0",
        "config_version": "7", "headers": {"server": "envoy", "x-envoy-upstream-service-time": "1", "x-mine": "a, b"},
        "echo": {"method": "POST", "path": "/p?q=1", "host": "reviews:9080", "protocol": "HTTP/1.1", "headers": {}},
    }


def test_echo_http1_sender_keeps_the_body_start_only_when_asked() -> None:
    body = "no healthy upstream é".encode() + b"\xff" + b"x" * 100

    def reply(peer: Peer, n: int, request: bytes) -> bytes:
        return b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: %d\r\n\r\n" % len(body) + body

    async def main() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with serve(reply) as (port, _):
            return (await _send_all(_forward(port, capture_body=24), 1), await _send_all(_forward(port), 1))

    (kept,), (plain,) = asyncio.run(main())
    assert kept["body"] == "no healthy upstream é\ufffdx" and "body" not in plain


def test_echo_http1_sender_given_host_request_id_and_new_connection() -> None:
    async def main() -> tuple[list[dict[str, Any]], Peer]:
        async with serve(ok) as (port, peer):
            request = _forward(port, headers=[["host", "other:1"], ["X-Request-Id", "same"]], new_connection=True)
            return await _send_all(request, 2), peer

    records, peer = asyncio.run(main())
    assert [r["request_id"] for r in records] == ["same", "same"]
    assert peer.requests == [b"GET /p?q=1 HTTP/1.1\r\nhost: other:1\r\nX-Request-Id: same\r\nConnection: close\r\n\r\n"] * 2
    assert peer.connections == 2


def test_echo_http1_sender_failures_are_records() -> None:
    async def main() -> list[dict[str, Any]]:
        async with serve(lambda peer, n, request: b"HTTP/1.1 200 OK\r\nx-echo-service: s\r\nContent-Length: 8\r\n\r\nnot json") as (port, _):
            bad_echo = await _send_all(_forward(port, include_echo=True), 1)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            refused = await _send_all(_forward(s.getsockname()[1]), 1)
        return bad_echo + refused

    bad_echo, refused = asyncio.run(main())
    assert (bad_echo["status"], bad_echo["error"]) == (200, "echo body is not JSON: b'not json'")
    assert (refused["status"], refused["error"].split(": ", 1)[1]) == (0, "Connection refused")
    assert set(refused) == {"index", "request_id", "status", "latency_s", "error"}
