"""A socket-free ADS stream (go-control-plane ``mockStream``): scripted requests in, responses out.

``FakeStream`` feeds ``XdsServer.StreamAggregatedResources`` an async iterator of requests and
pulls its responses one by one, each pull bounded by a deadline. Since one stream answers in wire
order, "nothing was sent" is checked deterministically: send a request that surely gets an answer
and assert that answer is the next response.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Self

import grpc
from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2

from harness.mesh.local.xds import XdsServer

NODE = "client.default"
RECV_TIMEOUT_S = 2.0


class Aborted(Exception):
    """What ``FakeContext.abort`` raises, as grpc.aio does with its own exception."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class FakeContext:
    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise Aborted(code, details)


class FakeStream:
    """One Envoy on one ADS stream. Use as ``async with FakeStream(server) as envoy:``.

    As grpc does, a task drives the server's response generator all the time, so requests are
    processed (and ACKs recorded) whether or not the test is reading responses.
    """

    def __init__(self, server: XdsServer, node_id: str = NODE) -> None:
        self._requests: asyncio.Queue[discovery_pb2.DiscoveryRequest | None] = asyncio.Queue()
        self._responses: asyncio.Queue[discovery_pb2.DiscoveryResponse | BaseException] = asyncio.Queue()
        self._node_id = node_id
        self._sent_first = False
        self._server = server
        self._pump: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._pump = asyncio.create_task(self._drive())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._requests.put_nowait(None)
        assert self._pump is not None
        await asyncio.wait_for(self._pump, RECV_TIMEOUT_S)
        if exc_type is None and not self._responses.empty():
            raise AssertionError(f"responses left unread: {self._responses.get_nowait()}")

    async def _drive(self) -> None:
        try:
            async for response in self._server.StreamAggregatedResources(self._request_iterator(), FakeContext()):
                self._responses.put_nowait(response)
        except Aborted as exc:
            self._responses.put_nowait(exc)

    async def _request_iterator(self) -> AsyncIterator[discovery_pb2.DiscoveryRequest]:
        while (request := await self._requests.get()) is not None:
            yield request

    def request(
        self,
        type_url: str,
        names: Sequence[str] = (),
        *,
        nonce: str = "",
        version: str = "",
        error: str | None = None,
    ) -> None:
        request = discovery_pb2.DiscoveryRequest(
            type_url=type_url, resource_names=list(names), response_nonce=nonce, version_info=version
        )
        if not self._sent_first:
            request.node.id = self._node_id
            self._sent_first = True
        if error is not None:
            request.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
        self._requests.put_nowait(request)

    def ack(self, response: discovery_pb2.DiscoveryResponse, names: Sequence[str] = ()) -> None:
        self.request(response.type_url, names, nonce=response.nonce, version=response.version_info)

    def nack(
        self, response: discovery_pb2.DiscoveryResponse, error: str, names: Sequence[str] = (), kept: str = ""
    ) -> None:
        """Reject ``response``; like Envoy, report ``kept`` (the last accepted version) as version_info."""
        self.request(response.type_url, names, nonce=response.nonce, version=kept, error=error)

    async def recv(self) -> discovery_pb2.DiscoveryResponse:
        try:
            item = await asyncio.wait_for(self._responses.get(), RECV_TIMEOUT_S)
        except TimeoutError:
            raise AssertionError(f"no DiscoveryResponse within {RECV_TIMEOUT_S}s") from None
        if isinstance(item, BaseException):
            raise item
        return item
