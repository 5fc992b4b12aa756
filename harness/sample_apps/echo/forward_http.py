"""ForwardEcho over HTTP/1.1 with aiohttp (the fastest Python client measured: httpx is ~10x slower).

One ClientSession per batch, ``TCPConnector(limit=concurrency)``; ``force_close`` when the batch asks
for a new connection per request. With ``connect_to`` the request goes to that address while the
Host header stays the URL's authority exactly as written (a caller's own Host header wins). Proxy
environment variables are ignored (``trust_env=False``): traffic must reach the sidecar, not a proxy.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from types import TracebackType

import aiohttp
from yarl import URL

from harness.sample_apps.echo import fields
from harness.sample_apps.echo.forward_spec import (
    ForwardRequest,
    Record,
    Sender,
    is_selected_header,
)


class HttpSender(Sender):
    def __init__(self, request: ForwardRequest) -> None:
        self._request = request
        self._url = URL(f"http://{request.target}{request.path_and_query}", encoded=True)
        names = {name.lower() for name, _ in request.headers}
        self._headers = list(request.headers)
        if "host" not in names:
            self._headers.append(("Host", request.authority))
        self._given_request_id = next(
            (value for name, value in request.headers if name.lower() == fields.REQUEST_ID_HEADER), None
        )
        self._timeout = aiohttp.ClientTimeout(total=request.timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HttpSender:
        connector = aiohttp.TCPConnector(limit=self._request.concurrency, force_close=self._request.new_connection)
        self._session = aiohttp.ClientSession(connector=connector, trust_env=False, auto_decompress=False)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(self, index: int) -> Record:
        assert self._session is not None, "HttpSender used outside 'async with'"
        req = self._request
        request_id = self._given_request_id or str(uuid.uuid4())
        headers = self._headers if self._given_request_id else [*self._headers, (fields.REQUEST_ID_HEADER, request_id)]
        started = time.perf_counter()
        try:
            async with self._session.request(req.method, self._url, headers=headers, data=req.body or None,
                                             timeout=self._timeout, allow_redirects=False) as resp:
                payload = await resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            error = f"timeout after {req.timeout_s:g}s" if isinstance(exc, asyncio.TimeoutError) else (
                f"{type(exc).__name__}: {exc}")
            return {"index": index, "request_id": request_id, "status": 0,
                    "latency_s": time.perf_counter() - started, "error": error}
        record: Record = {
            "index": index,
            "request_id": resp.headers.get(fields.REQUEST_ID_HEADER, request_id),
            "status": resp.status,
            "latency_s": time.perf_counter() - started,
        }
        for key, header in (("service", fields.SERVICE_HEADER), ("version", fields.VERSION_HEADER),
                            ("instance", fields.INSTANCE_HEADER), ("config_version", fields.CONFIG_VERSION_HEADER)):
            value = resp.headers.get(header)
            if value is not None:
                record[key] = value
        selected = {k.lower(): v for k, v in resp.headers.items() if is_selected_header(k.lower(), req.capture_headers)}
        if selected:
            record["headers"] = selected
        if req.include_echo and fields.SERVICE_HEADER in resp.headers:
            try:
                record["echo"] = json.loads(payload)
            except ValueError:
                record["error"] = f"echo body is not JSON: {payload[:200]!r}"
        return record
