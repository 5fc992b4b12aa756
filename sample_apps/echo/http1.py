"""A small HTTP/1.1 client on an asyncio Protocol: the traffic generator behind ForwardEcho.

Why not aiohttp: every request a check judges is generated here, and aiohttp's ClientSession costs
about twice the CPU of Envoy per request on a 2-core box, so the client, not the proxy under test,
set the pace. This client does only what ForwardEcho needs, and does it fully:

* ``RequestTemplate``: a request whose head is encoded once per batch; per-request headers (the
  request id) are spliced in as bytes.
* ``ResponseParser`` (pure, no I/O): one response from bytes; status line, headers (names
  lower-cased, a repeated header joined with ``", "``), body by Content-Length, chunked transfer
  coding (extensions ignored, trailers read and dropped) or read-to-close; no body for HEAD, 204
  and 304; interim 1xx responses (100 Continue, 103 Early Hints) skipped.
* ``Http1Pool``: keep-alive connections to one address, at most ``limit`` open at once, one
  request at a time per connection (no pipelining). A connection is reused only after a complete
  response that allows it; after any error, timeout or cancellation it is aborted, never reused.
  With ``new_connection`` every request gets its own connection, closed after the response.

Limits (past them the request fails with ``ResponseTooLarge`` and the connection is dropped):
``MAX_HEAD_BYTES`` for a response head (status line + headers, also chunked trailers and chunk-size
lines), ``MAX_BODY_BYTES`` for a body, ``MAX_INTERIM_RESPONSES`` 1xx responses before the final one.

Errors (``HttpClientError`` and its subclasses) carry a message that becomes a record's ``error``:
``ConnectError`` (could not connect), ``ConnectionClosed`` (closed or reset before the response was
complete), ``ProtocolError`` (malformed response; ``ResponseTooLarge``), ``RequestTimeout``.

As aiohttp does (RFC 9112 section 9.3.1), an idempotent request that finds a reused keep-alive
connection closed by the peer before a single response byte arrived is sent once more, on a new
connection: the peer closed an idle connection as we wrote, a race, not an answer.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import os
from collections.abc import Sequence
from typing import NamedTuple, Self, cast

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_INTERIM_RESPONSES = 8
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_METHODS_WITH_CONTENT = frozenset({"POST", "PUT", "PATCH"})
_HEXDIGITS = frozenset(b"0123456789abcdefABCDEF")
_CLOSE_WAIT_S = 1.0


class HttpClientError(Exception):
    """The request got no complete response; the message says why (it becomes a record's ``error``)."""


class ConnectError(HttpClientError):
    """The TCP connection could not be opened."""


class ConnectionClosed(HttpClientError):
    """The peer closed or reset the connection before the response was complete."""


class ProtocolError(HttpClientError):
    """The response is not valid HTTP/1.x."""


class ResponseTooLarge(ProtocolError):
    """The response head or body is over this client's limits (``MAX_HEAD_BYTES``, ``MAX_BODY_BYTES``)."""


class RequestTimeout(HttpClientError):
    """No complete response within the per-request timeout."""


def _timeout(timeout_s: float) -> RequestTimeout:
    return RequestTimeout(f"timeout after {timeout_s:g}s")


class Response(NamedTuple):
    """A complete response. ``keep_alive``: the connection may carry another request."""

    status: int
    reason: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


class RequestTemplate:
    """One request encoded once: request line, headers, Content-Length, body.

    ``render(extra)`` gives the bytes to write, with ``extra`` (already formatted header lines,
    e.g. ``"x-request-id: 1\\r\\n"``) added after the fixed headers. Content-Length is sent when
    there is a body or the method defines one (POST, PUT, PATCH: ``Content-Length: 0``), as RFC
    9110 section 8.6 asks. Names and values must already be valid (``forward_spec`` checks them).
    """

    __slots__ = ("_head", "_tail", "method")

    def __init__(self, method: str, target: str, headers: Sequence[tuple[str, str]], body: bytes = b"") -> None:
        lines = [f"{method} {target} HTTP/1.1\r\n", *(f"{name}: {value}\r\n" for name, value in headers)]
        if body or method in _METHODS_WITH_CONTENT:
            lines.append(f"Content-Length: {len(body)}\r\n")
        self.method = method
        self._head = "".join(lines).encode("latin-1")
        self._tail = b"\r\n" + body

    def render(self, extra: str = "") -> bytes:
        return self._head + extra.encode("latin-1") + self._tail if extra else self._head + self._tail


HeaderMemo = dict[str, tuple[str, str]]
"""Header lines already parsed (``"Name: value"`` -> ``("name", "value")``), shared by the responses
of one pool. Why: a batch's responses repeat all their header lines but one or two (the request id,
the date), and the per-line split, lower-casing and checks were most of the client's parsing CPU; a
dict hit is a fraction of that. Only lines up to ``_HEADER_MEMO_MAX_LEN`` are kept, and the memo is
emptied when it holds ``_HEADER_MEMO_SIZE``; it changes no result (the parse of a line is pure)."""
_HEADER_MEMO_SIZE = 1024
_HEADER_MEMO_MAX_LEN = 256


def _header_line(line: str) -> tuple[str, str]:
    """``"Name: value"`` -> ``("name", "value")``; ProtocolError for a line that is no header field."""
    name, sep, value = line.partition(":")
    if not sep or not name or name[0] in " \t" or name[-1] in " \t":
        raise ProtocolError(f"malformed response: bad header line {line[:100]!r}")
    return name.lower(), value.strip(" \t")


def _parse_head(head: bytes, memo: HeaderMemo) -> tuple[str, int, str, dict[str, str]]:
    """Status line and header block (without the final CRLF CRLF) -> version, status, reason, headers."""
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code, _, reason = rest.partition(" ")
    if version not in ("HTTP/1.1", "HTTP/1.0") or len(code) != 3 or not (code.isascii() and code.isdigit()):
        raise ProtocolError(f"malformed response: bad status line {lines[0][:100]!r} "
                            "(want 'HTTP/1.1 <3-digit status> <reason>')")
    headers: dict[str, str] = {}
    for i in range(1, len(lines)):
        line = lines[i]
        pair = memo.get(line)
        if pair is None:
            pair = _header_line(line)
            if len(line) <= _HEADER_MEMO_MAX_LEN:
                if len(memo) >= _HEADER_MEMO_SIZE:
                    memo.clear()
                memo[line] = pair
        name, value = pair
        if name in headers:
            headers[name] = f"{headers[name]}, {value}"
        else:
            headers[name] = value
    return version, int(code), reason, headers


def _content_length(value: str) -> int:
    if value.isascii() and value.isdigit():
        return int(value)
    values = {v.strip() for v in value.split(",")}  # "5, 5" from a repeated header is allowed, "5, 6" is not
    if len(values) != 1 or not all(v.isascii() and v.isdigit() for v in values):
        raise ProtocolError(f"malformed response: bad Content-Length {value[:100]!r}")
    return int(values.pop())


def _tokens(value: str | None) -> set[str]:
    return {t.strip().lower() for t in value.split(",")} if value else set()


_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _TO_EOF, _DONE = range(8)


class ResponseParser:
    """Parses one response from the bytes of a connection (pure: ``feed`` bytes, get a Response).

    ``feed(data)`` returns the Response once it is complete, else None; ``feed_eof()`` is called
    when the peer closes (it completes a read-to-close body, else raises ``ConnectionClosed``).
    After completion, ``leftover`` holds bytes past the response (a peer that sends those is not
    reused). ``received`` counts every byte fed, so a caller can tell "nothing came back" from
    "cut off". Errors: ``ProtocolError`` (``ResponseTooLarge``) from ``feed``. ``header_memo``: the
    ``HeaderMemo`` of the responses this one is likely to resemble (the pool's); none = its own.
    """

    __slots__ = ("_body_size", "_buf", "_head_only", "_headers", "_interim", "_keep_alive", "_max_body",
                 "_max_head", "_memo", "_parts", "_reason", "_remaining", "_state", "_status", "_trailer_bytes",
                 "leftover", "received")

    def __init__(self, *, head_only: bool = False, max_head_bytes: int = MAX_HEAD_BYTES,
                 max_body_bytes: int = MAX_BODY_BYTES, header_memo: HeaderMemo | None = None) -> None:
        self._head_only = head_only
        self._memo: HeaderMemo = {} if header_memo is None else header_memo
        self._max_head = max_head_bytes
        self._max_body = max_body_bytes
        self._state = _HEAD
        self._buf = b""
        self._interim = 0
        self._remaining = 0  # body or chunk bytes still due
        self._trailer_bytes = 0
        self._parts: list[bytes] = []
        self._body_size = 0
        self._status = 0
        self._reason = ""
        self._headers: dict[str, str] = {}
        self._keep_alive = False
        self.received = 0
        self.leftover = b""

    def feed(self, data: bytes) -> Response | None:
        """Parse more bytes; the Response once it is complete (feed no more after that), else None."""
        self.received += len(data)
        buf = self._buf + data if self._buf else data
        while True:
            state = self._state
            if state == _HEAD:
                end = buf.find(b"\r\n\r\n")
                if end > self._max_head or (end < 0 and len(buf) > self._max_head + 3):
                    raise ResponseTooLarge(f"response head larger than {self._max_head} bytes")
                if end < 0:
                    break
                self._start(buf[:end])
                buf = buf[end + 4:]
            elif state == _LENGTH or state == _CHUNK_DATA:
                take = buf[:self._remaining]
                self._add_body(take)
                self._remaining -= len(take)
                buf = buf[len(take):]
                if self._remaining:
                    break
                self._state = _DONE if state == _LENGTH else _CHUNK_END
            elif state == _CHUNK_SIZE:
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) > self._max_head:
                        raise ResponseTooLarge(f"chunk-size line longer than {self._max_head} bytes")
                    break
                self._chunk_size(buf[:end])
                buf = buf[end + 2:]
            elif state == _CHUNK_END:
                if len(buf) < 2:
                    break
                if buf[:2] != b"\r\n":
                    raise ProtocolError(f"malformed response: chunk data not followed by CRLF (got {buf[:2]!r})")
                buf = buf[2:]
                self._state = _CHUNK_SIZE
            elif state == _TRAILERS:
                end = buf.find(b"\r\n")
                if end < 0:
                    if self._trailer_bytes + len(buf) > self._max_head:
                        raise ResponseTooLarge(f"chunked trailers larger than {self._max_head} bytes")
                    break
                self._trailer_bytes += end + 2
                if self._trailer_bytes > self._max_head:
                    raise ResponseTooLarge(f"chunked trailers larger than {self._max_head} bytes")
                buf = buf[end + 2:]
                if end == 0:
                    self._state = _DONE
            elif state == _TO_EOF:
                self._add_body(buf)
                buf = b""
                break
            else:  # _DONE
                self.leftover = buf
                return self._response()
        self._buf = buf
        return None

    def feed_eof(self) -> Response:
        if self._state == _TO_EOF:
            self._state = _DONE
            return self._response()
        if self.received == 0:
            raise ConnectionClosed("connection closed by the peer before any response byte")
        raise ConnectionClosed(f"connection closed by the peer after {self.received} bytes, "
                               "before the response was complete")

    def _start(self, head: bytes) -> None:
        """A head is in: skip it if interim (1xx), else choose how the body is framed."""
        version, status, reason, headers = _parse_head(head, self._memo)
        if 100 <= status < 200:
            if status == 101:
                raise ProtocolError("malformed response: 101 Switching Protocols to a request that asked for no upgrade")
            self._interim += 1
            if self._interim > MAX_INTERIM_RESPONSES:
                raise ProtocolError(f"malformed response: more than {MAX_INTERIM_RESPONSES} interim 1xx responses")
            return
        self._status, self._reason, self._headers = status, reason, headers
        connection = _tokens(headers.get("connection"))
        self._keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        coding = headers.get("transfer-encoding")
        length = headers.get("content-length")
        if self._head_only or status in (204, 304):
            self._state = _DONE
        elif coding is not None:
            if length is not None:  # RFC 9112 section 6.3: a message with both must not be reused
                self._keep_alive = False
            if coding.rsplit(",", 1)[-1].strip().lower() == "chunked":
                self._state = _CHUNK_SIZE
            else:
                self._state, self._keep_alive = _TO_EOF, False
        elif length is not None:
            self._remaining = _content_length(length)
            if self._remaining > self._max_body:
                raise ResponseTooLarge(f"response body of {self._remaining} bytes is larger than the "
                                       f"{self._max_body} bytes ForwardEcho reads")
            self._state = _LENGTH if self._remaining else _DONE
        else:
            self._state, self._keep_alive = _TO_EOF, False

    def _chunk_size(self, line: bytes) -> None:
        size = line.split(b";", 1)[0].strip(b" \t")
        if not size or not _HEXDIGITS.issuperset(size):
            raise ProtocolError(f"malformed response: bad chunk-size line {line[:100]!r}")
        self._remaining = int(size, 16)
        self._state = _CHUNK_DATA if self._remaining else _TRAILERS
        if self._body_size + self._remaining > self._max_body:
            raise ResponseTooLarge(f"chunked response body larger than the {self._max_body} bytes ForwardEcho reads")

    def _add_body(self, data: bytes) -> None:
        if data:
            self._body_size += len(data)
            if self._body_size > self._max_body:
                raise ResponseTooLarge(f"response body larger than the {self._max_body} bytes ForwardEcho reads")
            self._parts.append(data)

    def _response(self) -> Response:
        parts = self._parts
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        return Response(self._status, self._reason, self._headers, body, self._keep_alive and not self.leftover)


class _Connection(asyncio.Protocol):
    """One TCP connection: writes a request, feeds what comes back to that request's parser."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._parser: ResponseParser | None = None
        self._waiter: asyncio.Future[Response] | None = None
        self.lost: asyncio.Future[None] = loop.create_future()
        self.is_closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's TCPTransport is no asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None:  # bytes nobody asked for: the peer broke HTTP/1.1, never reuse this connection
            self.abort()
            return
        try:
            response = parser.feed(data)
        except ProtocolError as exc:
            self._settle(exc)
            return
        if response is not None:
            self._settle(response)

    def eof_received(self) -> bool:
        self.is_closed = True
        parser = self._parser
        if parser is not None:
            try:
                self._settle(parser.feed_eof())
            except ConnectionClosed as exc:
                self._settle(exc)
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.is_closed = True
        parser = self._parser
        if parser is not None:
            why = f"{type(exc).__name__}: {os.strerror(exc.errno)}" if isinstance(exc, OSError) and exc.errno else (
                "connection closed by the peer")
            self._settle(ConnectionClosed(f"{why} after {parser.received} response bytes, "
                                          "before the response was complete"))
        if not self.lost.done():
            self.lost.set_result(None)

    def _settle(self, outcome: Response | HttpClientError) -> None:
        waiter = self._waiter
        self._parser = None
        self._waiter = None
        if waiter is None or waiter.done():
            return
        if isinstance(outcome, Response):
            waiter.set_result(outcome)
        else:
            waiter.set_exception(outcome)

    def exchange(self, data: bytes, parser: ResponseParser, deadline: float, timeout_s: float,
                 timeouts: _Timeouts) -> asyncio.Future[Response]:
        """Write one request; the future of its response (``RequestTimeout`` at ``deadline``, loop time).

        A plain method that returns the future rather than a coroutine: one await layer less per request.
        """
        transport = self._transport
        if self.is_closed or transport is None or transport.is_closing():
            raise ConnectionClosed("connection closed by the peer before any response byte")
        self._parser = parser
        waiter: asyncio.Future[Response] = self._loop.create_future()
        self._waiter = waiter
        timeouts.watch(deadline, self, parser, timeout_s)
        transport.write(data)
        return waiter

    def is_waiting_for(self, parser: ResponseParser) -> bool:
        """The exchange that uses ``parser`` has no outcome yet."""
        return self._parser is parser

    def expire(self, parser: ResponseParser, timeout_s: float) -> None:
        """Time out the exchange that uses ``parser``, if it is still waiting."""
        if self._parser is parser:
            self._settle(_timeout(timeout_s))

    def close(self) -> None:
        """Close after a complete response (nothing left to read)."""
        self.is_closed = True
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Drop the connection at once: after an error, a timeout or a cancellation."""
        self.is_closed = True
        self._parser = None
        if self._transport is not None:
            self._transport.abort()


class _Timeouts:
    """Per-request timeouts of one pool on a single loop timer.

    Why not a ``loop.call_at`` per request: asyncio keeps timer handles in a heap ordered by
    Python-level comparisons, and arming and cancelling one per request was about a tenth of the
    client's Python time. Here a request costs a heap push of a tuple (compared in C); the one timer
    is armed at the earliest deadline and, when it fires, expires what is due and re-arms.

    Entries are not removed when their request completes (no search in the heap); answered ones are
    dropped when they reach the top, and when answered entries pile up behind a slow one (more than
    ``_SLACK`` times the requests that can be waiting) the heap is rebuilt from the waiting ones. So
    it stays within a few times the pool's limit, since each connection has one request at a time.
    """

    _SLACK = 4

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        self.loop = loop
        self._max_entries = self._SLACK * limit + 64
        self._heap: list[tuple[float, int, _Connection, ResponseParser, float]] = []
        self._order = itertools.count()  # ties on the deadline: first watched, first expired; never compares the rest
        self._timer: asyncio.TimerHandle | None = None
        self._armed_at = math.inf

    def watch(self, deadline: float, conn: _Connection, parser: ResponseParser, timeout_s: float) -> None:
        """Expire ``conn``'s exchange with ``parser`` at ``deadline`` (loop time) unless it is over by then."""
        heap = self._heap
        while heap and not heap[0][2].is_waiting_for(heap[0][3]):
            heapq.heappop(heap)
        if len(heap) >= self._max_entries:
            heap[:] = [entry for entry in heap if entry[2].is_waiting_for(entry[3])]
            heapq.heapify(heap)
        heapq.heappush(heap, (deadline, next(self._order), conn, parser, timeout_s))
        if deadline < self._armed_at:
            self._arm(deadline)

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_at(when, self._fire)
        self._armed_at = when

    def _fire(self) -> None:
        due = max(self._armed_at, self.loop.time())  # the loop runs a timer up to its clock resolution early
        self._timer, self._armed_at = None, math.inf
        heap = self._heap
        while heap and (heap[0][0] <= due or not heap[0][2].is_waiting_for(heap[0][3])):
            _, _, conn, parser, timeout_s = heapq.heappop(heap)
            conn.expire(parser, timeout_s)
        if heap:
            self._arm(heap[0][0])

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._armed_at = None, math.inf
        self._heap.clear()


class Http1Pool:
    """Keep-alive HTTP/1.1 connections to ``host:port``; at most ``limit`` open at once.

    Use as ``async with Http1Pool(...) as pool: await pool.request(template.render(), ...)``.
    Leaving the block aborts every connection and waits (bounded) until their sockets are closed.
    """

    def __init__(self, host: str, port: int, *, limit: int, new_connection: bool = False,
                 source_ip: str | None = None,
                 max_head_bytes: int = MAX_HEAD_BYTES, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self._host = host
        self._port = port
        self._local_addr = (source_ip, 0) if source_ip else None
        self._new_connection = new_connection
        self._max_head = max_head_bytes
        self._max_body = max_body_bytes
        self._slots = asyncio.Semaphore(limit)
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()
        self._limit = limit
        self._timeouts: _Timeouts | None = None  # made on the first request, in the loop that runs it
        self._header_memo: HeaderMemo = {}
        self.connections_made = 0

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        conns = list(self._open)
        self._open.clear()
        self._idle.clear()
        if self._timeouts is not None:
            self._timeouts.close()
        for conn in conns:
            conn.abort()
        if conns:
            await asyncio.wait([c.lost for c in conns], timeout=_CLOSE_WAIT_S)

    async def request(self, data: bytes, *, method: str, timeout_s: float) -> Response:
        """Send one encoded request (``RequestTemplate.render``) and return its complete response.

        Raises an ``HttpClientError`` when there is none within ``timeout_s`` (connecting included).
        """
        await self._slots.acquire()  # not ``async with``: its two extra coroutines cost every request
        try:
            return await self._request(data, method, timeout_s)
        finally:
            self._slots.release()

    async def _request(self, data: bytes, method: str, timeout_s: float) -> Response:
        timeouts = self._timeouts
        if timeouts is None:
            timeouts = self._timeouts = _Timeouts(asyncio.get_running_loop(), self._limit)
        deadline = timeouts.loop.time() + timeout_s  # not get_running_loop(): it calls getpid() every time
        head_only = method == "HEAD"
        may_resend = method in IDEMPOTENT_METHODS
        conn = self._take_idle()
        reused = conn is not None
        for _ in range(2):  # the first try, and one resend after a stale keep-alive connection
            if conn is None:
                try:
                    async with asyncio.timeout_at(deadline):
                        conn = await self._connect()
                except TimeoutError:
                    raise _timeout(timeout_s) from None
            parser = ResponseParser(head_only=head_only, max_head_bytes=self._max_head,
                                    max_body_bytes=self._max_body, header_memo=self._header_memo)
            try:
                response = await conn.exchange(data, parser, deadline, timeout_s, timeouts)
            except ConnectionClosed:
                self._discard(conn)
                if not (reused and may_resend and parser.received == 0):
                    raise
                conn, reused = None, False
                continue
            except BaseException:
                self._discard(conn)
                raise
            if response.keep_alive and not self._new_connection:
                self._idle.append(conn)
            else:
                self._open.discard(conn)
                conn.close()
            return response
        raise AssertionError("unreachable: the second try either returns or raises")

    def _take_idle(self) -> _Connection | None:
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not conn.is_closed:
                return conn
            self._open.discard(conn)
        return None

    def _discard(self, conn: _Connection) -> None:
        self._open.discard(conn)
        conn.abort()

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(
                lambda: _Connection(loop), self._host, self._port, local_addr=self._local_addr
            )
        except OSError as exc:
            why = os.strerror(exc.errno) if exc.errno else str(exc)
            raise ConnectError(f"cannot connect to {self._host}:{self._port}: {why}") from exc
        self._open.add(conn)
        self.connections_made += 1
        return conn
