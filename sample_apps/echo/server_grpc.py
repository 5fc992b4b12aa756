"""The echo app's gRPC server: answers ANY unary method, with raw bytes in and out (no protos).

The reply's initial metadata carries the identity headers and the call's trace headers; the
response message is the same JSON echo as the HTTP server's (``protocol`` is ``gRPC``, ``path``
is the method). Knobs come from call metadata (``x-echo-delay``, ``x-echo-fail-first``,
``x-echo-grpc-status``); a failing attempt answers UNAVAILABLE and a bad knob INVALID_ARGUMENT,
both after sending the identity metadata, so the caller still sees who answered.

gRPC Python does not expose the ``:authority`` of a call, so ``host`` is always empty here.
Streaming methods are not served: every method is treated as unary-unary.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import NoReturn

import grpc

from harness.sample_apps.echo import fields, knobs
from harness.sample_apps.echo.instance import EchoInstance, trace_headers

GRPC_PROTOCOL = "gRPC"

_Unary = Callable[[bytes, grpc.aio.ServicerContext[bytes, bytes]], Awaitable[bytes]]


class _AnyMethod(grpc.GenericRpcHandler):  # type: ignore[misc]  # grpc ships no type for it
    """Routes every method name to the echo behaviour."""

    def __init__(self, behaviour: Callable[[str], _Unary]) -> None:
        self._behaviour = behaviour

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(self._behaviour(handler_call_details.method))


class GrpcEcho:
    """The generic gRPC echo server; ``start`` binds it to 127.0.0.1."""

    def __init__(self, instance: EchoInstance) -> None:
        self._instance = instance
        self._server: grpc.aio.Server | None = None

    async def start(self, port: int, host: str = "127.0.0.1") -> int:
        """Listen on host:port (0 = ephemeral); return the bound port."""
        self._server = grpc.aio.server()
        self._server.add_generic_rpc_handlers([_AnyMethod(self._method)])
        bound: int = self._server.add_insecure_port(f"{host}:{port}")
        await self._server.start()
        return bound

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(grace=None)
            self._server = None

    def _method(self, method: str) -> _Unary:
        async def call(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
            return await self._answer(method, context)

        return call

    async def _answer(self, method: str, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        inst = self._instance
        metadata = {m.key: m.value for m in context.invocation_metadata() or () if isinstance(m.value, str)}
        request_id = metadata.get(fields.REQUEST_ID_HEADER, "")
        inst.log.append(time.time(), request_id, "POST", method, "", GRPC_PROTOCOL, tuple(metadata.items()))
        identity = inst.identity_headers() + trace_headers(metadata)
        try:
            chosen = knobs.resolve_grpc(metadata, inst.defaults)
            failing = knobs.is_failing_attempt(chosen, request_id, inst.attempts)
        except knobs.KnobError as exc:
            await _fail(context, identity, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        if chosen.delay_s > 0:
            await asyncio.sleep(chosen.delay_s)
        if failing:
            await _fail(context, identity, grpc.StatusCode.UNAVAILABLE, "echo knob fail-first: failing this attempt")
        if chosen.grpc_status is not None and chosen.grpc_status is not grpc.StatusCode.OK:
            await _fail(context, identity, chosen.grpc_status, f"echo knob grpc-status asked for {chosen.grpc_status.name}")
        await context.send_initial_metadata(identity)
        return inst.echo_body("POST", method, "", GRPC_PROTOCOL, metadata)


async def _fail(context: grpc.aio.ServicerContext[bytes, bytes], identity: list[tuple[str, str]], code: grpc.StatusCode,
                details: str) -> NoReturn:
    """Fail the call as a trailers-only response (identity in the trailers, no initial metadata): Envoy
    reads a gRPC status for its ``retry_on: unavailable,...`` policies only from a trailers-only response,
    as a real server that fails before answering sends it."""
    context.set_trailing_metadata(identity)
    await context.abort(code, details)
    raise AssertionError("grpc.aio's abort() always raises")  # for type checkers: abort is NoReturn
