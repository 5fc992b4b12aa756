"""Locust entry point: ``MeshUser`` sends a case's traffic through the client sidecar, one stats row per version.

Locust has no per-version statistics (locustio/locust#1592), so each response is renamed after
the version that answered it (``x-echo-version``): Locust's console, CSV and HTML then show a row
per check and version (``split follows the weights: v1``; ``none`` when Envoy answered itself,
``error`` when no response came). Each response is also written as one compact record
(``wire.Record``) for the harness to judge with the same statistics as the pytest checks.

The Locust process is the in-mesh client: it connects to the client sidecar's listener for the
service port (Locust's ``--host``) and sends the service's Host header, as the client app's
ForwardEcho does, so the client-side VirtualService routing happens in that sidecar.

Run by ``mesh-harness load CASE`` (which writes ``--mesh-plan`` and reads ``--mesh-records``),
as one process or as a Locust master with workers (``--workers N``; the workers relay their
records to the master, see ``relay.py``), or by hand against a mesh started with ``mesh-harness up`` (the listener port is in
``mesh-harness status``), with Locust's web UI::

    locust -f harness/locust/locustfile.py --host http://127.0.0.1:<listener port> --mesh-url http://reviews:9080/

This file imports Locust (and so gevent's monkey-patching): never import it into the harness or
pytest process. State shared by the users of this process lives in ``_SESSION``, set when a test
starts and closed when it stops, as Locust's own examples keep theirs at module level.
"""

from __future__ import annotations

import argparse
import itertools
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, constant, events, task
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner

from harness.locust.relay import MasterRelay, WorkerRelay
from harness.locust.wire import LoadPlan, PlannedRequest, Record, encode_record, plan_for_url, restamped
from harness.sample_apps.echo import fields

#: Row name part for a response no app answered (Envoy's local reply), and for no response at all.
NO_VERSION, NO_RESPONSE = "none", "error"


class _Session:
    """The plan, a request counter per check, and where the records of one test run go (a file, the master, nowhere)."""

    def __init__(self, plan: LoadPlan, sink: Callable[[str], object] | None, close: Callable[[], None] | None,
                 own_config_version: str | None = None) -> None:
        self.plan = plan
        self._own_config_version = own_config_version
        self._sink = sink
        self._close = close
        self._turn = itertools.count()
        self._sent = [itertools.count() for _ in plan.requests]

    def next_request(self) -> tuple[int, PlannedRequest, int]:
        """Round robin over the checks (independent of any response); the check's own request number."""
        check = next(self._turn) % len(self.plan.requests)
        return check, self.plan.requests[check], next(self._sent[check])

    def write(self, record: Record) -> None:
        if self._sink is not None:
            self._sink(encode_record(restamped(record, self._own_config_version, self.plan.config_version)))

    def close(self) -> None:
        if self._close is not None:
            self._close()
        self._sink = self._close = None


_SESSION: _Session | None = None
#: Set at init, from this process's own options: a worker's options are overwritten by its master's at each spawn.
_MASTER: MasterRelay | None = None
_WORKER_NAME = ""
_OWN_HOST = ""  # a worker on another machine: its own sidecar listener, not the master's
_OWN_CONFIG_VERSION: str | None = None


@events.init_command_line_parser.add_listener  # type: ignore[untyped-decorator]  # Locust's hooks are untyped
def _options(parser: Any) -> None:
    parser.add_argument("--mesh-plan", default="", help="mesh-harness: load plan JSON (written by `mesh-harness load`)")
    parser.add_argument("--mesh-url", default="", help="mesh-harness: URL as a pod calls it, e.g. http://reviews:9080/")
    parser.add_argument("--mesh-records", default="", help="mesh-harness: write one JSON line per response here")
    parser.add_argument("--mesh-workers", default="", help="mesh-harness master: write what each worker delivered here")
    parser.add_argument("--mesh-run-time", type=float, default=0.0,
                        help="mesh-harness master: stop after this many seconds, waiting for every worker's records (instead of -t)")
    parser.add_argument("--mesh-worker-name", default="", help="mesh-harness worker: its name in reports (default host:pid)")
    parser.add_argument("--mesh-own-host", default="",
                        help="mesh-harness worker: send to this sidecar listener of its own mesh, not the master's --host")
    parser.add_argument("--mesh-config-version", default="",
                        help="mesh-harness worker: the version under which its own mesh applied the case")
    # the master hands the plan to its workers in this option (they may not share its files)
    parser.add_argument("--mesh-plan-json", default="", help=argparse.SUPPRESS)


@events.init.add_listener  # type: ignore[untyped-decorator]
def _init(environment: Environment, **_kwargs: Any) -> None:
    global _MASTER, _WORKER_NAME, _OWN_HOST, _OWN_CONFIG_VERSION
    options, runner = environment.parsed_options, environment.runner
    if isinstance(runner, MasterRunner) and options is not None:
        records = open(options.mesh_records or os.devnull, "a", buffering=1 << 20)  # noqa: SIM115  # closed by the relay
        _MASTER = MasterRelay(runner, records, options.mesh_workers)
    elif isinstance(runner, WorkerRunner):
        _WORKER_NAME = (options.mesh_worker_name if options is not None else "") or f"{socket.gethostname()}:{os.getpid()}"
        _OWN_HOST = options.mesh_own_host if options is not None else ""
        _OWN_CONFIG_VERSION = (options.mesh_config_version or None) if options is not None else None


@events.test_start.add_listener  # type: ignore[untyped-decorator]
def _start(environment: Environment, **_kwargs: Any) -> None:
    global _SESSION
    options, runner = environment.parsed_options, environment.runner
    if options is not None and options.mesh_plan_json:  # a worker: the plan its master sent
        plan = LoadPlan.from_json(options.mesh_plan_json)
    elif options is not None and options.mesh_plan:
        plan = LoadPlan.from_json(Path(options.mesh_plan).read_text())
    elif options is not None and options.mesh_url:
        plan = plan_for_url(options.mesh_url)
    else:
        raise ValueError("mesh-harness: give --mesh-url http://SERVICE:PORT/PATH (or --mesh-plan FILE) and "
                         "--host http://127.0.0.1:<the client sidecar's listener port> (see `mesh-harness status`)")
    if isinstance(runner, MasterRunner):
        options.mesh_plan_json = plan.to_json()  # sent to the workers with the spawn messages that follow
        if options.mesh_run_time > 0 and _MASTER is not None:
            gevent.spawn_later(options.mesh_run_time, _MASTER.finish, runner)
        _SESSION = _Session(plan, None, None)  # the relay writes, and closes in finish (or on quitting)
    elif isinstance(runner, WorkerRunner):
        relay = WorkerRelay(runner, _WORKER_NAME)
        _SESSION = _Session(plan, relay.write, relay.close, _OWN_CONFIG_VERSION)
    elif options is not None and options.mesh_records:
        records = open(options.mesh_records, "a", buffering=1 << 20)  # noqa: SIM115  # closed by the session
        _SESSION = _Session(plan, records.write, records.close)
    else:
        _SESSION = _Session(plan, None, None)


@events.test_stop.add_listener  # type: ignore[untyped-decorator]
def _stop(environment: Environment, **_kwargs: Any) -> None:
    if _SESSION is not None:
        _SESSION.close()


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def _quitting(environment: Environment, **_kwargs: Any) -> None:
    """A master that quits without a test stop (no worker came) still closes its files."""
    if _MASTER is not None:
        _MASTER.close()


class MeshUser(FastHttpUser):
    """Sends the plan's requests back to back (closed loop), round robin over the checks.

    Redirects are not followed: a redirect is a response the case judges (``status: 301``).
    """

    wait_time = constant(0)
    network_timeout = 30.0
    connection_timeout = 10.0

    def __init__(self, environment: Environment) -> None:
        self.host = sending_host(self.host)  # set before the client is made: it connects to self.host
        super().__init__(environment)

    @task
    def send(self) -> None:
        session = current_session()
        check, planned, i = session.next_request()
        with self.client.request(planned.method, planned.path, name=planned.check, data=planned.body or None,
                                 headers=planned.headers_for(i), catch_response=True,
                                 allow_redirects=False) as response:
            record = _record(check, planned, response)
            response.request_meta["name"] = f"{planned.check}: {row_name(record)}"
            session.write(record)


def current_session() -> _Session:
    """This process's test session; StopUser when there is none (the test did not start, its error
    is logged, or has stopped)."""
    if _SESSION is None:
        raise StopUser()
    return _SESSION


def sending_host(user_host: str | None) -> str | None:
    """Where this process's users connect: a remote worker's own sidecar listener, else Locust's host."""
    return _OWN_HOST or user_host


def row_name(record: Record) -> str:
    """The version part of a Locust stats row: who answered, ``none`` (Envoy itself) or ``error`` (no response)."""
    if record.status == 0:
        return NO_RESPONSE
    return record.version or NO_VERSION


def make_record(check: int, planned: PlannedRequest, *, started: float, latency_s: float, status: int,
                header: Callable[[str], str | None], error: str | None, grpc_status: int | None = None) -> Record:
    """One record from what came back: ``header(name)`` reads a response header (gRPC: metadata)."""
    captured = {name: value for name in planned.capture_headers if (value := header(name)) is not None}
    return Record(
        check=check, started=started, latency_s=latency_s, status=status,
        request_id=header(fields.REQUEST_ID_HEADER) or "", service=header(fields.SERVICE_HEADER),
        version=header(fields.VERSION_HEADER), instance=header(fields.INSTANCE_HEADER),
        config_version=header(fields.CONFIG_VERSION_HEADER), error=error, headers=captured, grpc_status=grpc_status,
    )


def _record(check: int, planned: PlannedRequest, response: Any) -> Record:
    meta = response.request_meta
    status = int(response.status_code or 0)
    headers = response.headers if status else None
    error = None
    if not status:
        error = str(getattr(response, "error", None) or meta.get("exception") or "no response")
    return make_record(check, planned, started=float(meta["start_time"]), latency_s=float(meta["response_time"]) / 1000.0,
                       status=status, header=(lambda name: headers.get(name)) if headers is not None else (lambda name: None),
                       error=error)
