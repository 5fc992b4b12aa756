"""The echo app's HTTP/1.1 server: any method, any path, answered with who we are and what we got.

Built on aiohttp's low-level ``web.Server`` (no router, no middlewares, no access log): this is the
server every load check ends on, and the router costs throughput we would rather spend on traffic.

A reply carries the identity headers (``fields.SERVICE_HEADER`` ...), the request's trace headers
(``fields.TRACE_HEADERS``), and a JSON body: ``service, version, instance, method, path`` (raw path
and query), ``host`` (Host header), ``protocol`` (``HTTP/1.1``) and ``headers`` (lower-cased names;
repeated headers joined with ``", "``). Behaviour knobs (``knobs.py``) change the status and add a
delay; a bad knob value answers 400 with the message in the body's ``error`` field.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from harness.sample_apps.echo import fields, knobs
from harness.sample_apps.echo.instance import SHUTDOWN_GRACE_S, EchoInstance, trace_headers

_EMPTY_QUERY: dict[str, str] = {}


def _lower_headers(request: web.BaseRequest) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in request.raw_headers:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


class HttpEcho:
    """The request handler; ``start`` binds it to 127.0.0.1."""

    def __init__(self, instance: EchoInstance) -> None:
        self._instance = instance
        self._runner: web.ServerRunner | None = None

    async def start(self, port: int, host: str = "127.0.0.1") -> int:
        """Listen on host:port (0 = ephemeral); return the bound port."""
        self._runner = web.ServerRunner(web.Server(self.handle, access_log=None), handle_signals=False,
                                        shutdown_timeout=SHUTDOWN_GRACE_S)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        return int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def handle(self, request: web.BaseRequest) -> web.Response:
        inst = self._instance
        headers = _lower_headers(request)
        request_id = headers.get(fields.REQUEST_ID_HEADER, "")
        path = request.raw_path
        host = headers.get("host", "")
        protocol = f"HTTP/{request.version.major}.{request.version.minor}"
        inst.log.append(time.time(), request_id, request.method, path, host, protocol, tuple(headers.items()))
        if request.body_exists:
            await request.read()
        reply_headers = inst.identity_headers() + trace_headers(headers)
        reply_headers.append(("content-type", "application/json"))
        try:
            query = request.query if "?" in path else _EMPTY_QUERY
            chosen = knobs.resolve_http(headers, query, inst.defaults)
            failing = knobs.is_failing_attempt(chosen, request_id, inst.attempts)
        except knobs.KnobError as exc:
            body = inst.echo_body(request.method, path, host, protocol, headers, error=str(exc))
            return web.Response(status=400, body=body, headers=reply_headers)
        if chosen.delay_s > 0:
            await asyncio.sleep(chosen.delay_s)
        if failing and chosen.fail_first is not None:
            status = chosen.fail_first.code
        elif chosen.status is not None:
            status = chosen.status.choose(inst.rng)
        else:
            status = 200
        body = inst.echo_body(request.method, path, host, protocol, headers)
        return web.Response(status=status, body=body, headers=reply_headers)
