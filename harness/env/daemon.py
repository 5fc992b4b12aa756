"""The environment daemon: ``python -m harness.env.daemon --name N --dir DIR [...]``, started by ``up``.

It starts a ``LocalMesh`` with the topology from ``--services`` (or the default one), serves the
JSON API below on 127.0.0.1 (a free port) and writes the state file (port, token, its pid) once
everything is ready. It runs until ``POST /down`` or SIGTERM/SIGINT, then closes the mesh (every
app and Envoy it started) and removes the state file. The mesh is started and closed on the
main thread: Envoy's parent-death signal is tied to the thread that spawned it. If the mesh
cannot start, the error goes to ``error.json`` in DIR for ``up`` to show, and the exit code is
2 (bad input) or 3 (mesh error), as in the CLI.

API (JSON; every request carries ``Authorization: Bearer <token>`` from the state file)::

    GET  /status                          services, instances, clients, applied objects, xDS sync
    POST /apply   {"manifests": [{name, text}]}   add or replace objects, wait for ACKs
    POST /delete  {"manifests": [{name, text}]}   remove those objects, wait for ACKs
    POST /send    {url, method, headers, count, concurrency, ...}   a ForwardEcho batch
    GET  /routes?client=C                 route configurations from C's sidecar config_dump
    GET  /logs/app?service=S&version=V&since=T     app request-log records newer than T
    GET  /logs/envoy?client=C&skip=N      access-log entries after the first N, and the count now
    POST /down                            close the mesh and exit

For an attached run (``harness.env.remote.AttachedMesh``, the Mesh interface over this API)::

    GET  /mesh                            mesh info and the topology it runs
    POST /mesh/apply   {"objects": [..]}  LocalMesh.apply: version, and the objects applied before
    POST /mesh/revert  {"objects": [..]}  make exactly these objects the applied set, wait for ACKs
    GET  /mesh/stats?workload=W           the workload sidecar's Envoy stats
    POST /mesh/drain   {"timeout_s": T}   wait until no request is in flight on any sidecar

``/send`` takes every ``SendSpec`` field (``wire.encode_send_spec``); absent ones take its defaults.

Errors answer 4xx/5xx with ``wire.encode_error``; the command re-raises the same exception.
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import secrets
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from harness.env import state as env_state
from harness.env import wire
from harness.env.manifests import Manifest
from harness.env.service import EnvService
from harness.errors import CaseError, ConfigRejected, HarnessError, MeshError
from harness.istio.model import IstioObject
from harness.mesh.base import SyncToken
from harness.session import add_flags, from_args, local_mesh_options
from harness.topology import DEFAULT_TOPOLOGY

_SERVER_STOP_S = 10.0
_MAX_BODY = 64 << 20

Route = Callable[[EnvService, dict[str, str], dict[str, Any]], dict[str, Any]]


def _manifests(body: dict[str, Any]) -> list[Manifest]:
    return [Manifest(str(m["name"]), str(m["text"])) for m in body.get("manifests", [])]


def _objects(body: dict[str, Any]) -> list[IstioObject]:
    return [wire.decode_object(o) for o in body.get("objects", [])]


def _token(token: SyncToken) -> dict[str, Any]:
    return {"version": token.version, "previous": [wire.encode_object(o) for o in token.previous]}


ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/status"): lambda s, q, b: s.status(),
    ("POST", "/apply"): lambda s, q, b: s.apply(_manifests(b)),
    ("POST", "/delete"): lambda s, q, b: s.delete(_manifests(b)),
    ("POST", "/send"): lambda s, q, b: s.send(b),
    ("GET", "/routes"): lambda s, q, b: s.routes(q.get("client", "client")),
    ("GET", "/logs/app"): lambda s, q, b: s.app_log(q.get("service"), q.get("version"), float(q.get("since", "0"))),
    ("GET", "/logs/envoy"): lambda s, q, b: s.access_log(q.get("client", "client"), int(q.get("skip", "0"))),
    ("GET", "/mesh"): lambda s, q, b: s.attach(),
    ("POST", "/mesh/apply"): lambda s, q, b: _token(s.apply_objects(_objects(b))),
    ("POST", "/mesh/revert"): lambda s, q, b: {"version": s.install(_objects(b))},
    ("GET", "/mesh/stats"): lambda s, q, b: s.proxy_stats(q.get("workload", "client")),
    ("POST", "/mesh/drain"): lambda s, q, b: s.drain(float(b.get("timeout_s", 10.0))),
}


def _status_of(exc: HarnessError) -> int:
    if isinstance(exc, CaseError):
        return 400
    return 409 if isinstance(exc, ConfigRejected) else 500


def make_handler(service: EnvService, token: str, stop: threading.Event) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to one service, token and stop event."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def _handle(self, method: str) -> None:
            if not hmac.compare_digest(self.headers.get("Authorization", ""), f"Bearer {token}"):
                self._reply(401, {"error": "MeshError", "message": "wrong or missing token"})
                return
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            if (method, parts.path) == ("POST", "/down"):
                self._reply(200, {"ok": True})
                stop.set()
                return
            route = ROUTES.get((method, parts.path))
            if route is None:
                self._reply(404, {"error": "MeshError", "message": f"no API {method} {parts.path}"})
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
                body = orjson.loads(self.rfile.read(min(length, _MAX_BODY)) or b"{}") if length else {}
                self._reply(200, route(service, query, body))
            except HarnessError as exc:
                self._reply(_status_of(exc), wire.encode_error(exc))
            except Exception as exc:  # noqa: BLE001 (a daemon bug must reach the user, not kill the thread)
                traceback.print_exc()
                self._reply(500, wire.encode_error(MeshError(f"environment daemon failed: {type(exc).__name__}: {exc}; "
                                                             "see its log (daemon.log in the environment's dir)")))

        def _reply(self, code: int, body: dict[str, Any]) -> None:
            # orjson, not json: a /send answer holds a batch's Observations, which it writes straight from the
            # dataclasses (every field by name) at a twentieth of asdict + json.dumps' cost.
            data = orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)  # keys as json.dumps wrote them
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            print(f"{time.strftime('%H:%M:%S')} {format % args}", file=sys.stderr, flush=True)

    return Handler


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m harness.env.daemon")
    p.add_argument("--name", required=True)
    p.add_argument("--dir", required=True, type=Path)
    p.add_argument("--services", default=None)
    add_flags(p, "mesh")  # as `up` took them (env/commands.py: as_flags)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        serve(args, stop)
    except HarnessError as exc:
        (args.dir / env_state.ERROR_FILE).write_text(json.dumps(wire.encode_error(exc)))
        print(f"mesh-harness environment {args.name!r} could not start: {exc}", file=sys.stderr, flush=True)
        return 2 if isinstance(exc, CaseError) else 3
    finally:
        (args.dir / env_state.STATE_FILE).unlink(missing_ok=True)
    return 0


def serve(args: argparse.Namespace, stop: threading.Event) -> None:
    """Start the mesh, serve the API until ``stop`` is set, close everything."""
    from harness.env.services import load_services_file
    from harness.mesh.local.mesh import LocalMesh

    topology = load_services_file(args.services) if args.services else DEFAULT_TOPOLOGY
    with LocalMesh(**local_mesh_options(from_args(args))) as mesh:
        mesh.deploy(topology)
        token = secrets.token_urlsafe(32)
        server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(EnvService(mesh), token, stop))
        thread = threading.Thread(target=server.serve_forever, name="env-api", daemon=True)
        thread.start()
        try:
            env_state.write_state(args.dir, env_state.EnvState(
                name=args.name, pid=os.getpid(), api_port=int(server.server_address[1]), token=token,
                mesh="local", started=time.time(),
            ))
            print(f"{time.strftime('%H:%M:%S')} environment {args.name!r} ready, API on port "
                  f"{server.server_address[1]}", file=sys.stderr, flush=True)
            stop.wait()  # the environment's lifetime: until `down` or a signal
        finally:
            (args.dir / env_state.STATE_FILE).unlink(missing_ok=True)  # no new command finds us while closing
            server.shutdown()
            server.server_close()
            thread.join(_SERVER_STOP_S)
    print(f"{time.strftime('%H:%M:%S')} environment {args.name!r} closed", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
