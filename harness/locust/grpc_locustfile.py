"""Locust entry point for gRPC checks: ``MeshGrpcUser`` makes a case's unary calls through the client sidecar.

Everything but the user is shared with ``locustfile.py`` (options, plan, records, the relay to a
master), which this file imports; ``mesh-harness load`` runs it for a case whose checks speak gRPC
(``send: {protocol: grpc}``). A call is what ForwardEcho's gRPC sender makes: the method is the
plan's path, the body the raw request message, the channel's ``:authority`` the service as a pod
names it (``reviews:7070``), so Envoy routes on the service and on the method (a ``uri`` match).
Each record carries the call's gRPC status; Locust counts a status other than OK as a failure and
shows a row per check and answering version, as for HTTP.

gRPC's synchronous API runs on gevent here (``grpc.experimental.gevent.init_gevent``, before any
channel exists, as Locust's own gRPC example does). This file imports Locust: never import it into
the harness or pytest process.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import grpc
import grpc.experimental.gevent as grpc_gevent
from locust import User, constant, task
from locust.env import Environment

from harness.locust import locustfile as mesh
from harness.sample_apps.echo.forward_grpc import answered_status

grpc_gevent.init_gevent()


class GrpcCallFailed(Exception):
    """A call that ended with a gRPC status other than OK, as Locust's failure for its stats row."""


class MeshGrpcUser(User):
    """Makes the plan's unary calls back to back (closed loop), round robin over the checks, on a channel of its own."""

    wait_time = constant(0)

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self._channels: dict[str, grpc.Channel] = {}

    def on_stop(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()

    @task
    def call(self) -> None:
        session = mesh.current_session()
        check, planned, i = session.next_request()
        headers = planned.headers_for(i)
        metadata = [(name.lower(), value) for name, value in headers.items() if name.lower() != "host"]
        call = self._channel(headers["Host"]).unary_unary(planned.path)
        started, clock = time.time(), time.perf_counter()
        try:
            _, done = call.with_call(planned.body.encode(), metadata=metadata, timeout=planned.timeout_s)
            code, details, answer = grpc.StatusCode.OK, "", done
        except grpc.RpcError as exc:  # the raised error is also the call: code, details, metadata
            failed: Any = exc
            code, details, answer = failed.code(), failed.details() or "", failed
        latency_s = time.perf_counter() - clock
        got = {str(k).lower(): v for k, v in (*(answer.initial_metadata() or ()), *(answer.trailing_metadata() or ()))
               if isinstance(v, str)}
        record = mesh.make_record(
            check, planned, started=started, latency_s=latency_s, status=answered_status(code, details, bool(got)),
            header=got.get, error=None if code is grpc.StatusCode.OK else f"{code.name}: {details}",
            grpc_status=code.value[0],
        )
        self.environment.events.request.fire(
            request_type="grpc", name=f"{planned.check}: {mesh.row_name(record)}", response_time=latency_s * 1000.0,
            response_length=0, exception=GrpcCallFailed(record.error) if record.error else None, context={},
        )
        session.write(record)

    def _channel(self, authority: str) -> grpc.Channel:
        """This user's channel to the sidecar listener, with ``authority`` as every call's ``:authority``."""
        if authority not in self._channels:
            target = urlsplit(mesh.sending_host(self.host) or "").netloc
            self._channels[authority] = grpc.insecure_channel(target, options=[("grpc.default_authority", authority)])
        return self._channels[authority]
