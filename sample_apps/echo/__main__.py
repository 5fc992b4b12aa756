"""Run one echo instance: ``python -m harness.sample_apps.echo --service reviews --version v1 ...``.

Binds 127.0.0.1 (``--bind`` moves the HTTP and gRPC servers, e.g. to 0.0.0.0 in a pod; port 0 = ephemeral). When every server listens it prints one JSON line,
``{"ready": true, "http": P, "grpc": P, "control": P, "pid": N}``, and nothing else on stdout.
It exits, quietly, on SIGTERM/SIGINT or when its stdin reaches EOF: the parent keeps stdin open,
so an instance never outlives a parent that died.

It runs on uvloop: a check's traffic crosses this app twice (the client's ForwardEcho and the
answering app) on the cores Envoy needs, and asyncio's own loop is a large share of each request's
CPU there (README, Performance).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import threading

import uvloop

from harness.sample_apps.echo.control import Control
from harness.sample_apps.echo.instance import EchoInstance
from harness.sample_apps.echo.knobs import (
    DELAY_FORMS,
    FAIL_FIRST_FORMS,
    GRPC_STATUS_FORMS,
    STATUS_FORMS,
    KnobError,
    Knobs,
)
from harness.sample_apps.echo.requestlog import DEFAULT_CAPACITY, RequestLog
from harness.sample_apps.echo.server_grpc import GrpcEcho
from harness.sample_apps.echo.server_http import HttpEcho


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m harness.sample_apps.echo", description=__doc__.split("\n")[0])
    p.add_argument("--service", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--instance", required=True, help="unique name of this instance, e.g. reviews-v1-0")
    p.add_argument("--http-port", type=int, default=0)
    p.add_argument("--grpc-port", type=int, default=0)
    p.add_argument("--control-port", type=int, default=0)
    p.add_argument("--bind", default="127.0.0.1",
                   help="address of the HTTP and gRPC servers (0.0.0.0 in a pod, where the sidecar delivers to the pod IP); "
                        "the control port stays on 127.0.0.1")
    p.add_argument("--status", help=f"default HTTP status: {STATUS_FORMS}")
    p.add_argument("--delay", help=f"default delay: {DELAY_FORMS}")
    p.add_argument("--fail-first", help=f"default fail-first: {FAIL_FIRST_FORMS}")
    p.add_argument("--grpc-status", help=f"default gRPC status: {GRPC_STATUS_FORMS}")
    p.add_argument("--log-capacity", type=int, default=DEFAULT_CAPACITY,
                   help=f"request log ring buffer size (default {DEFAULT_CAPACITY})")
    return p


def _watch_stdin(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Block on stdin in a daemon thread; EOF (parent closed it or died) stops the app.

    ``os.read`` on the descriptor, not ``sys.stdin``: a daemon thread blocked inside the buffered
    reader holds its lock, and an exit by signal then aborts at interpreter shutdown (SIGABRT).
    """
    while os.read(sys.stdin.fileno(), 4096):
        pass
    loop.call_soon_threadsafe(stop.set)


async def _serve(args: argparse.Namespace, defaults: Knobs) -> None:
    instance = EchoInstance(args.service, args.version, args.instance, defaults, RequestLog(args.log_capacity))
    http, grpc_server, control = HttpEcho(instance), GrpcEcho(instance), Control(instance)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        ports = {
            "http": await http.start(args.http_port, args.bind),
            "grpc": await grpc_server.start(args.grpc_port, args.bind),
            "control": await control.start(args.control_port),
        }
        threading.Thread(target=_watch_stdin, args=(loop, stop), name="stdin-watch", daemon=True).start()
        sys.stdout.write(json.dumps({"ready": True, **ports, "pid": os.getpid()}) + "\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        await control.stop()
        await grpc_server.stop()
        await http.stop()


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        defaults = Knobs.from_flags(args.status, args.delay, args.fail_first, args.grpc_status)
    except KnobError as exc:
        parser.error(f"--{exc.knob}: {exc}")
    if args.log_capacity < 1:
        parser.error(f"--log-capacity: must be at least 1 (got {args.log_capacity})")
    uvloop.run(_serve(args, defaults))


if __name__ == "__main__":
    main()
