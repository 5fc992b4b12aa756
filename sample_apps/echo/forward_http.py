"""ForwardEcho over HTTP/1.1 with the package's own client (``http1.py``).

Why not aiohttp: it was the bottleneck of every batch (about 80% of a core, half of it inside
``ClientSession.request``); the raw client keeps up with Envoy. See ``bench/forward_echo.py``.

One ``Http1Pool`` per batch, at most ``concurrency`` keep-alive connections; with ``new_connection``
a connection per request, sent with ``Connection: close``. The TCP connection goes to ``connect_to``
(else the URL's authority, port 80 if it names none) while the Host header stays the URL's
authority exactly as written (a caller's own Host header wins). No proxy is ever used: traffic must
reach the sidecar. The request head is encoded once per batch; only the request id is per request.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from types import TracebackType
from typing import Self

from harness.sample_apps.echo import fields
from harness.sample_apps.echo.forward_spec import (
    ForwardRequest,
    HeaderSelector,
    Record,
    RequestIds,
    Sender,
    cycled_headers,
)
from harness.sample_apps.echo.http1 import Http1Pool, HttpClientError, RequestTemplate

_IDENTITY = (("service", fields.SERVICE_HEADER), ("version", fields.VERSION_HEADER),
             ("instance", fields.INSTANCE_HEADER), ("config_version", fields.CONFIG_VERSION_HEADER))


def host_and_port(target: str) -> tuple[str, int]:
    """``HOST[:PORT]`` (``[v6]:PORT`` too) -> where to connect; port 80 when none is given."""
    parts = urllib.parse.urlsplit(f"//{target}")
    return parts.hostname or "", parts.port or 80


class HttpSender(Sender):
    def __init__(self, request: ForwardRequest) -> None:
        self._request = request
        self._select = HeaderSelector(request.capture_headers)
        names = {name.lower() for name, _ in request.headers}
        headers = [] if "host" in names else [("Host", request.authority)]
        headers.extend(request.headers)
        if request.new_connection and "connection" not in names:
            headers.append(("Connection", "close"))
        self._template = RequestTemplate(request.method, request.path_and_query, headers, request.body)
        self._given_request_id = next(
            (value for name, value in request.headers if name.lower() == fields.REQUEST_ID_HEADER), None
        )
        self._request_ids = RequestIds()
        host, port = host_and_port(request.target)
        self._pool = Http1Pool(host, port, limit=request.concurrency, new_connection=request.new_connection,
                               source_ip=request.source_ip)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._pool.close()

    async def send(self, index: int) -> Record:
        req = self._request
        cycled = "".join(f"{name}: {value}\r\n" for name, value in cycled_headers(req.headers_cycle, index)) \
            if req.headers_cycle else ""
        if self._given_request_id is None:
            request_id = self._request_ids(index)
            data = self._template.render(f"{fields.REQUEST_ID_HEADER}: {request_id}\r\n{cycled}")
        else:
            request_id = self._given_request_id
            data = self._template.render(cycled)
        started = time.perf_counter()
        try:
            resp = await self._pool.request(data, method=req.method, timeout_s=req.timeout_s)
        except HttpClientError as exc:
            return {"index": index, "request_id": request_id, "status": 0,
                    "latency_s": time.perf_counter() - started, "error": str(exc)}
        latency = time.perf_counter() - started
        headers = resp.headers
        record: Record = {
            "index": index,
            "request_id": headers.get(fields.REQUEST_ID_HEADER, request_id),
            "status": resp.status,
            "latency_s": latency,
        }
        for key, header in _IDENTITY:
            value = headers.get(header)
            if value is not None:
                record[key] = value
        selected = self._select(headers)
        if selected:
            record["headers"] = selected
        if req.capture_body:
            record["body"] = resp.body[:req.capture_body].decode("utf-8", "replace")
        if req.include_echo and fields.SERVICE_HEADER in headers:
            try:
                record["echo"] = json.loads(resp.body)
            except ValueError:
                record["error"] = f"echo body is not JSON: {resp.body[:200]!r}"
        return record
