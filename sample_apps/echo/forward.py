"""ForwardEcho: send a batch of requests from this instance, one compact record per request.

This is how traffic originates inside the mesh (as in Istio's tests): the harness asks the client
app, over its control port, to send ``count`` requests to a URL; in the local mesh ``connect_to``
points the TCP connection at the client's sidecar listener while the Host header stays the URL's
authority (like ``curl --connect-to``).

As Istio's ``forwarder`` package: a dispatcher (``SENDERS``, by protocol) and one batch executor
(``run_batch``): at most ``concurrency`` requests in flight, request i not started before
``i / rate`` seconds into the batch, one deadline for the whole batch (requests in flight or unsent
at the deadline become error records), records returned in request order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from harness.sample_apps.echo.forward_grpc import GrpcSender
from harness.sample_apps.echo.forward_http import HttpSender
from harness.sample_apps.echo.forward_spec import (
    ForwardProtocol,
    ForwardRequest,
    Record,
    Sender,
)

SendOne = Callable[[int], Awaitable[Record]]


async def run_batch(count: int, concurrency: int, rate: float | None, deadline_s: float, send: SendOne) -> list[Record]:
    """Run ``send(0..count-1)`` with bounded concurrency, optional pacing and one batch deadline."""
    loop = asyncio.get_running_loop()
    results: list[Record | None] = [None] * count
    next_index = 0
    start = loop.time()

    async def worker() -> None:
        nonlocal next_index
        while next_index < count:
            index = next_index
            next_index += 1
            if rate is not None:
                wait = start + index / rate - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
            results[index] = {}  # started: an empty placeholder tells "in flight" from "never sent"
            results[index] = await send(index)

    workers = [asyncio.create_task(worker()) for _ in range(min(concurrency, count))]
    try:
        done, _ = await asyncio.wait(workers, timeout=deadline_s)
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    for task in done:
        bug = task.exception()  # a sender bug, not a failed request: those are records
        if bug is not None:
            raise bug
    return [r if r else _unfinished(i, r, deadline_s) for i, r in enumerate(results)]


def _unfinished(index: int, placeholder: Record | None, deadline_s: float) -> Record:
    what = "in flight at" if placeholder is not None else "not sent before"
    return {"index": index, "request_id": "", "status": 0, "latency_s": 0.0,
            "error": f"{what} the batch deadline of {deadline_s:g}s"}


SENDERS: dict[ForwardProtocol, Callable[[ForwardRequest], Sender]] = {"http": HttpSender, "grpc": GrpcSender}


async def forward(request: ForwardRequest) -> list[Record]:
    """Dispatch on the protocol and run the batch."""
    async with SENDERS[request.protocol](request) as sender:
        return await run_batch(request.count, request.concurrency, request.rate, request.deadline_s, sender.send)
