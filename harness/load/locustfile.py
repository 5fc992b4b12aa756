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
or by hand against a mesh started with ``mesh-harness up`` (the listener port is in
``mesh-harness status``), with Locust's web UI::

    locust -f harness/load/locustfile.py --host http://127.0.0.1:<listener port> --mesh-url http://reviews:9080/

This file imports Locust (and so gevent's monkey-patching): never import it into the harness or
pytest process. State shared by the users of this process lives in ``_SESSION``, set when a test
starts and closed when it stops, as Locust's own examples keep theirs at module level.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import IO, Any

from locust import FastHttpUser, constant, events, task
from locust.env import Environment
from locust.exception import StopUser

from harness.load.wire import LoadPlan, PlannedRequest, Record, encode_record, plan_for_url
from harness.sample_apps.echo import fields

#: Row name part for a response no app answered (Envoy's local reply), and for no response at all.
NO_VERSION, NO_RESPONSE = "none", "error"


class _Session:
    """The plan, a request counter per check, and the records file of one test run."""

    def __init__(self, plan: LoadPlan, records: IO[str] | None) -> None:
        self.plan = plan
        self.records = records
        self._turn = itertools.count()
        self._sent = [itertools.count() for _ in plan.requests]

    def next_request(self) -> tuple[int, PlannedRequest, int]:
        """Round robin over the checks (independent of any response); the check's own request number."""
        check = next(self._turn) % len(self.plan.requests)
        return check, self.plan.requests[check], next(self._sent[check])

    def write(self, record: Record) -> None:
        if self.records is not None:
            self.records.write(encode_record(record))

    def close(self) -> None:
        if self.records is not None:
            self.records.close()
            self.records = None


_SESSION: _Session | None = None


@events.init_command_line_parser.add_listener  # type: ignore[untyped-decorator]  # Locust's hooks are untyped
def _options(parser: Any) -> None:
    parser.add_argument("--mesh-plan", default="", help="mesh-harness: load plan JSON (written by `mesh-harness load`)")
    parser.add_argument("--mesh-url", default="", help="mesh-harness: URL as a pod calls it, e.g. http://reviews:9080/")
    parser.add_argument("--mesh-records", default="", help="mesh-harness: write one JSON line per response here")


@events.test_start.add_listener  # type: ignore[untyped-decorator]
def _start(environment: Environment, **_kwargs: Any) -> None:
    global _SESSION
    options = environment.parsed_options
    if options is not None and options.mesh_plan:
        plan = LoadPlan.from_json(Path(options.mesh_plan).read_text())
    elif options is not None and options.mesh_url:
        plan = plan_for_url(options.mesh_url)
    else:
        raise ValueError("mesh-harness: give --mesh-url http://SERVICE:PORT/PATH (or --mesh-plan FILE) and "
                         "--host http://127.0.0.1:<the client sidecar's listener port> (see `mesh-harness status`)")
    records = open(options.mesh_records, "a", buffering=1 << 20) if options.mesh_records else None  # noqa: SIM115
    _SESSION = _Session(plan, records)


@events.test_stop.add_listener  # type: ignore[untyped-decorator]
def _stop(environment: Environment, **_kwargs: Any) -> None:
    if _SESSION is not None:
        _SESSION.close()


class MeshUser(FastHttpUser):
    """Sends the plan's requests back to back (closed loop), round robin over the checks.

    Redirects are not followed: a redirect is a response the case judges (``status: 301``).
    """

    wait_time = constant(0)
    network_timeout = 30.0
    connection_timeout = 10.0

    @task
    def send(self) -> None:
        session = _SESSION
        if session is None:  # the test did not start (its error is logged) or has stopped
            raise StopUser()
        check, planned, i = session.next_request()
        with self.client.request(planned.method, planned.path, name=planned.check, data=planned.body or None,
                                 headers=planned.headers_for(i), catch_response=True,
                                 allow_redirects=False) as response:
            record = _record(check, planned, response)
            response.request_meta["name"] = f"{planned.check}: {_row(record)}"
            session.write(record)


def _row(record: Record) -> str:
    if record.status == 0:
        return NO_RESPONSE
    return record.version or NO_VERSION


def _record(check: int, planned: PlannedRequest, response: Any) -> Record:
    meta = response.request_meta
    status = int(response.status_code or 0)
    headers = response.headers if status else None
    get = (lambda name: headers.get(name)) if headers is not None else (lambda name: None)
    error = None
    if not status:
        error = str(getattr(response, "error", None) or meta.get("exception") or "no response")
    captured = {name: value for name in planned.capture_headers if (value := get(name)) is not None}
    return Record(
        check=check, started=float(meta["start_time"]), latency_s=float(meta["response_time"]) / 1000.0,
        status=status, request_id=get(fields.REQUEST_ID_HEADER) or "", service=get(fields.SERVICE_HEADER),
        version=get(fields.VERSION_HEADER), instance=get(fields.INSTANCE_HEADER),
        config_version=get(fields.CONFIG_VERSION_HEADER), error=error, headers=captured,
    )
