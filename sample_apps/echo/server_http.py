"""The echo app's HTTP/1.1 server: any method, any path, answered with who we are and what we got.

Why not aiohttp's server: every request a check judges ends here, and aiohttp's request and response
machinery cost about 70 us of CPU a request, as much as the Envoy in front of it; on a 2-core machine
that CPU is taken from the generator and the proxy under test. This server is an asyncio Protocol
around ``httptools`` (llhttp, the parser of Node.js, in C) that writes each reply as one buffer, at
a fifth of that cost.

A reply carries the identity headers (``fields.SERVICE_HEADER`` ...), the request's trace headers
(``fields.TRACE_HEADERS``), a ``date`` and a JSON body: ``service, version, instance, method, path``
(the request target as sent, query included), ``host`` (Host header), ``protocol`` (``HTTP/1.1``) and
``headers`` (lower-cased names; repeated headers joined with ``", "``). Behaviour knobs (``knobs.py``)
change the status and add a delay; a bad knob value answers 400 with the message in the body's
``error`` field. HEAD gets the head GET would get.

HTTP/1.1 as a server owes it: keep-alive unless the request (or HTTP/1.0 without ``keep-alive``)
says otherwise; pipelined requests answered in order, also when an earlier one is delayed; a body is
read and discarded; ``Expect: 100-continue`` answered with ``100 Continue``; a request the parser
refuses gets ``400`` and the connection is closed; an upgrade (``Upgrade:``, ``CONNECT``) is answered
as a plain request and the connection closed after it, since the echo app speaks nothing else.
``stop`` closes the listener, lets delayed replies run for ``SHUTDOWN_GRACE_S``, then drops the rest.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
import traceback
import urllib.parse
from collections import deque
from collections.abc import Mapping
from http import HTTPStatus

import httptools

from harness.sample_apps.echo import fields, knobs
from harness.sample_apps.echo.instance import SHUTDOWN_GRACE_S, EchoInstance, trace_headers

_REASONS = {status.value: status.phrase for status in HTTPStatus}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_EMPTY_QUERY: Mapping[str, str] = {}

Reply = bytes | asyncio.Task[bytes]
"""A reply's bytes, or the task that makes them (a delayed request)."""


class _Clock:
    """The ``date`` header's value, formatted once a second (RFC 9110 section 6.6.1: an origin server with a clock sends it)."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def __call__(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._second, self._text = now, email.utils.formatdate(now, usegmt=True)
        return self._text


def encode_reply(status: int, headers: list[tuple[str, str]], body: bytes, *, head_only: bool = False,
                 close: bool = False) -> bytes:
    """One HTTP/1.1 response as bytes (pure): status line, ``headers``, Content-Length, the body unless HEAD."""
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\n"]
    lines += [f"{name}: {value}\r\n" for name, value in headers]
    lines.append(f"content-length: {len(body)}\r\n")
    if close:
        lines.append("connection: close\r\n")
    lines.append("\r\n")
    head = "".join(lines).encode("latin-1")
    return head if head_only else head + body


def query_of(target: str) -> Mapping[str, str]:
    """The knobs' view of a request target's query: each name's first value, percent- and ``+``-decoded."""
    _, _, query = target.partition("?")
    if not query:
        return _EMPTY_QUERY
    found: dict[str, str] = {}
    for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        found.setdefault(name, value)
    return found


class HttpEcho:
    """The server of one echo instance; ``start`` binds it to 127.0.0.1."""

    def __init__(self, instance: EchoInstance) -> None:
        self._instance = instance
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._date = _Clock()

    async def start(self, port: int, host: str = "127.0.0.1") -> int:
        """Listen on host:port (0 = ephemeral); return the bound port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        delayed = [task for conn in self._connections for task in conn.delayed()]
        if delayed:
            await asyncio.wait(delayed, timeout=SHUTDOWN_GRACE_S)
        for conn in list(self._connections):
            conn.abort()
        await server.wait_closed()

    def answer(self, method: str, target: str, version: str, headers: dict[str, str], *, keep_alive: bool = True) -> Reply:
        """The reply to one request: bytes now, or a task when a knob asks for a delay (``keep_alive``
        False: the reply says ``connection: close``)."""
        inst = self._instance
        request_id = headers.get(fields.REQUEST_ID_HEADER, "")
        host = headers.get("host", "")
        protocol = f"HTTP/{version}"
        inst.log.append(time.time(), request_id, method, target, host, protocol, tuple(headers.items()))
        reply_headers = [*inst.identity_headers(), *trace_headers(headers), ("content-type", "application/json"),
                         ("date", self._date())]
        head_only = method == "HEAD"
        try:
            chosen = knobs.resolve_http(headers, query_of(target), inst.defaults)
            failing = knobs.is_failing_attempt(chosen, request_id, inst.attempts)
        except knobs.KnobError as exc:
            body = inst.echo_body(method, target, host, protocol, headers, error=str(exc))
            return encode_reply(400, reply_headers, body, head_only=head_only, close=not keep_alive)

        def reply() -> bytes:
            if failing and chosen.fail_first is not None:
                status = chosen.fail_first.code
            elif chosen.status is not None:
                status = chosen.status.choose(inst.rng)
            else:
                status = 200
            body = inst.echo_body(method, target, host, protocol, headers)
            return encode_reply(status, reply_headers, body, head_only=head_only, close=not keep_alive)

        if chosen.delay_s > 0:
            async def delayed() -> bytes:
                await asyncio.sleep(chosen.delay_s)
                return reply()

            return asyncio.get_running_loop().create_task(delayed())
        return reply()


def _bug_reply(exc: Exception) -> bytes:
    """A bug in the app: 500, as aiohttp answered, with the traceback on stderr (the app's log)."""
    traceback.print_exception(exc)
    return encode_reply(500, [("content-type", "text/plain")], f"echo app error: {exc!r}".encode())


class _Connection(asyncio.Protocol):
    """One client connection: parses requests (httptools calls the ``on_*`` methods) and writes replies in order."""

    def __init__(self, echo: HttpEcho) -> None:
        self._echo = echo
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._target = b""
        self._headers: dict[str, str] = {}
        self._pending: deque[tuple[Reply, bool]] = deque()  # replies not written yet, in request order; keep-alive
        self._closing = False  # no more requests are read: write what is pending, then close

    # --- asyncio -----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a stream server's transport
        self._echo._connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._closing = True  # the upgrade request itself was answered as a plain one
            self._flush()
        except httptools.HttpParserError as exc:
            self._closing = True
            self._pending.append((encode_reply(400, [("content-type", "text/plain")],
                                               f"bad request: {exc}".encode(), close=True), False))
            self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._echo._connections.discard(self)
        self._drop_pending()

    def delayed(self) -> list[asyncio.Task[bytes]]:
        return [reply for reply, _ in self._pending if isinstance(reply, asyncio.Task)]

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    # --- httptools callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._target = b""
        self._headers = {}

    def on_url(self, url: bytes) -> None:
        self._target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        headers = self._headers
        headers[key] = f"{headers[key]}, {text}" if key in headers else text

    def on_headers_complete(self) -> None:
        if self._headers.get("expect", "").lower() == "100-continue" and self._transport is not None:
            self._transport.write(_CONTINUE)

    def on_message_complete(self) -> None:
        parser = self._parser
        method = parser.get_method().decode("latin-1")
        keep_alive = parser.should_keep_alive()
        try:
            reply = self._echo.answer(method, self._target.decode("latin-1"), parser.get_http_version(),
                                      self._headers, keep_alive=keep_alive)
        except Exception as exc:  # a bug in the app: answer 500 as aiohttp did, and say why on stderr
            reply = _bug_reply(exc)
        if isinstance(reply, asyncio.Task):
            reply.add_done_callback(lambda _task: self._flush())
        self._pending.append((reply, keep_alive))
        if not keep_alive:
            self._closing = True
        if len(self._pending) == 1:
            self._flush()

    # --- writing -----------------------------------------------------------------------------

    def _flush(self) -> None:
        """Write the replies that are ready, in request order; close after the last one if asked to."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        while self._pending:
            reply, keep_alive = self._pending[0]
            if isinstance(reply, asyncio.Task):
                if not reply.done():
                    return  # its done-callback flushes again
                if reply.cancelled():
                    self._drop_pending()
                    transport.abort()
                    return
                try:
                    data = reply.result()
                except Exception as exc:
                    data = _bug_reply(exc)
            else:
                data = reply
            self._pending.popleft()
            transport.write(data)
            if not keep_alive:
                self._closing = True
                self._drop_pending()  # requests pipelined after a "close" are not answered
        if self._closing:
            transport.close()

    def _drop_pending(self) -> None:
        for reply, _ in self._pending:
            if isinstance(reply, asyncio.Task):
                reply.cancel()
        self._pending.clear()
