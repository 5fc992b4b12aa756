"""ForwardEcho over gRPC with grpc.aio: unary calls to any method, raw bytes, no protos.

One channel per batch (HTTP/2 multiplexes the concurrent calls), or one per request when the
batch asks for new connections (with a local subchannel pool, else gRPC would share the TCP
connection between channels). The channel connects to ``connect_to`` (or the URL's authority)
and sets ``grpc.default_authority`` to the URL's host:port, so Envoy routes on the service name.

``status`` in a record: 200 when a peer answered (the call succeeded or carried metadata), the
HTTP status gRPC reports for a non-gRPC answer ("Received http2 header with status: 503"), else 0
(no response: connection failed or the per-request timeout hit; ``error`` says which).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from types import TracebackType

import grpc

from harness.sample_apps.echo import fields
from harness.sample_apps.echo.forward_spec import (
    ForwardRequest,
    HeaderSelector,
    Record,
    Sender,
    cycled_headers,
)

_HTTP_STATUS_IN_DETAILS = re.compile(r"Received http2 header with status: (\d{3})")
_IDENTITY = (("service", fields.SERVICE_HEADER), ("version", fields.VERSION_HEADER),
             ("instance", fields.INSTANCE_HEADER), ("config_version", fields.CONFIG_VERSION_HEADER))

Metadata = tuple[tuple[str, str | bytes], ...]


def answered_status(code: grpc.StatusCode, details: str, has_metadata: bool) -> int:
    """A gRPC call's ``status`` in a record (see the module docstring); also what Locust's gRPC user records."""
    http_status = _HTTP_STATUS_IN_DETAILS.search(details)
    if http_status:
        return int(http_status.group(1))
    return 200 if code is grpc.StatusCode.OK or has_metadata else 0


class GrpcSender(Sender):
    def __init__(self, request: ForwardRequest) -> None:
        self._request = request
        self._select = HeaderSelector(request.capture_headers)
        authority = request.authority
        metadata: list[tuple[str, str]] = []
        self._given_request_id: str | None = None
        for name, value in request.headers:
            key = name.lower()
            if key == "host":
                authority = value
            else:
                metadata.append((key, value))
                if key == fields.REQUEST_ID_HEADER:
                    self._given_request_id = value
        self._metadata = metadata
        self._options: list[tuple[str, str | int]] = [("grpc.default_authority", authority)]
        if request.new_connection:
            self._options.append(("grpc.use_local_subchannel_pool", 1))
        self._channel: grpc.aio.Channel | None = None

    def _open(self) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(self._request.target, options=self._options)

    async def __aenter__(self) -> GrpcSender:
        if not self._request.new_connection:
            self._channel = self._open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._channel is not None:
            await self._channel.close()

    async def send(self, index: int) -> Record:
        req = self._request
        request_id = self._given_request_id or str(uuid.uuid4())
        metadata = [*self._metadata, *((name.lower(), value) for name, value in cycled_headers(req.headers_cycle, index))]
        if not self._given_request_id:
            metadata.append((fields.REQUEST_ID_HEADER, request_id))
        channel = self._channel or self._open()
        started = time.perf_counter()
        payload: bytes | None = None
        try:
            call = channel.unary_unary(req.grpc_method)(req.body, metadata=metadata, timeout=req.timeout_s)
            try:
                payload = await call
            except grpc.aio.AioRpcError as exc:
                code, details = exc.code(), exc.details() or ""
                initial, trailing = tuple(exc.initial_metadata() or ()), tuple(exc.trailing_metadata() or ())
            else:
                code, details = grpc.StatusCode.OK, ""
                initial, trailing = tuple(await call.initial_metadata() or ()), tuple(await call.trailing_metadata() or ())
        finally:
            if channel is not self._channel:
                await channel.close()
        latency = time.perf_counter() - started
        return self._record(index, request_id, latency, code, details, initial + trailing, payload)

    def _record(self, index: int, request_id: str, latency: float, code: grpc.StatusCode, details: str,
                metadata: Metadata, payload: bytes | None) -> Record:
        req = self._request
        headers = {str(k).lower(): v for k, v in metadata if isinstance(v, str)}
        record: Record = {
            "index": index,
            "request_id": headers.get(fields.REQUEST_ID_HEADER, request_id),
            "status": answered_status(code, details, bool(headers)),
            "latency_s": latency,
            "grpc_status": code.value[0],
        }
        for key, header in _IDENTITY:
            if header in headers:
                record[key] = headers[header]
        if code is not grpc.StatusCode.OK:
            record["error"] = f"{code.name}: {details}"
        selected = self._select(headers)
        if selected:
            record["headers"] = selected
        if req.include_echo and payload is not None:
            try:
                record["echo"] = json.loads(payload)
            except ValueError:
                record["error"] = f"echo reply is not JSON: {payload[:200]!r}"
        return record
