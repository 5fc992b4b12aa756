"""The client for an echo app's control port, and the JSON that crosses it.

Both backends drive the same echo app (``harness.sample_apps.echo``), locally on a loopback port
and on kube through a port-forward, so its client lives beside them. ``ControlClient`` speaks to
the control port (never routed through the mesh): ForwardEcho batches, the request log, health.
httpx is fine here: these are a few control calls; the traffic itself is generated inside the app.

The codec is pure: ``spec_to_json`` builds a /forward body, ``observation_from_json`` reads one
record back (and the environment daemon's Observations, which have the same shape).
``bounded_request`` maps httpx's timeout and transport errors to harness errors at the boundary
(httpx's own ``map_httpcore_exceptions`` idea), for this client and the environment daemon's, each
with its own words. Every failure is a ``MeshError`` naming the instance: ``ProcessError`` when the
control port is unreachable, ``SyncTimeout`` when a call ran out of time.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
import orjson

from harness.errors import HarnessError, Issue, MeshError, ProcessError, SyncTimeout, UnsupportedError
from harness.loopback import loopback_client
from harness.mesh.base import Echo, Observation, ReceivedRequest, SendSpec

_CONTROL_TIMEOUT_S = 10.0
_FORWARD_MARGIN_S = 30.0  # on top of the batch deadline: time to encode and ship up to a million records
_MAX_LOG_PAGES = 10_000  # bound on GET /log pages in one read
_LOG_PAGE = 10_000  # entries asked for a page (the app's most); a shorter page is the last one


def bounded_request(http: httpx.Client, method: str, path: str, *, timeout: float, no_answer: str,
                    unreachable: Callable[[httpx.TransportError], HarnessError], **kwargs: Any) -> httpx.Response:
    """One HTTP call of at most ``timeout`` seconds, with httpx's errors mapped at the boundary.

    A timeout is ``SyncTimeout(no_answer)``; any other transport error is what ``unreachable``
    makes of it (the caller knows whether that means a dead process or a dead daemon, and what to
    do). Either way the httpx error stays attached as the cause.
    """
    try:
        return http.request(method, path, timeout=timeout, **kwargs)
    except httpx.TimeoutException as exc:
        raise SyncTimeout(no_answer) from exc
    except httpx.TransportError as exc:
        raise unreachable(exc) from exc


def spec_to_json(spec: SendSpec, connect_to: str | None, capture_headers: Sequence[str] = (),
                 source_ip: str | None = None) -> dict[str, Any]:
    """The /forward body for a SendSpec (pure). ``http2`` is refused: the echo app sends HTTP/1.1 or gRPC.

    This is the echo app's request (``ForwardRequest.from_json``), not a SendSpec on the wire (the
    environment daemon's ``env/wire.encode_send_spec``): the mesh has already chosen where to
    connect and which address to send from, and ``client``/``via`` are its business, not the app's.
    """
    if spec.protocol not in ("http", "grpc"):
        raise UnsupportedError([Issue(f"protocol {spec.protocol!r} is not supported by the local mesh's "
                                      "ForwardEcho (http or grpc); run with --mesh kind", path="send.protocol")])
    return {
        "url": spec.url,
        "connect_to": connect_to,
        "method": spec.method,
        "headers": [[k, v] for k, v in spec.headers],
        **({"headers_cycle": [[k, list(values)] for k, values in spec.headers_cycle]} if spec.headers_cycle else {}),
        "body": base64.b64encode(spec.body).decode(),
        "count": spec.count,
        "concurrency": spec.concurrency,
        "rate": spec.rate,
        "protocol": spec.protocol,
        "new_connection": spec.new_connection,
        "timeout_s": spec.timeout_s,
        "deadline_s": spec.deadline_s,
        "include_echo": spec.include_echo,
        "grpc_method": spec.grpc_method,
        "capture_headers": list(capture_headers),
        **({"capture_body": spec.capture_body} if spec.capture_body else {}),  # absent = no body kept
        **({"source_ip": source_ip} if source_ip else {}),  # the address to send from; absent = the OS's choice
    }


def observation_from_json(record: Mapping[str, Any]) -> Observation:
    """A JSON Observation -> Observation (pure): an echo app's /forward record, or an Observation as the
    environment daemon writes it (orjson's encoding of the dataclass: every field, by name).

    One reader for both, since a record is an Observation with what only the mesh knows
    (``flags``, ``upstream_host``, from the access log) absent; absent optional keys take the
    defaults, and keys this harness does not know are ignored.
    """
    echo = record.get("echo")
    return Observation(
        index=record["index"],
        request_id=record["request_id"],
        status=record["status"],
        latency_s=record["latency_s"],
        service=record.get("service"),
        version=record.get("version"),
        instance=record.get("instance"),
        config_version=record.get("config_version"),
        grpc_status=record.get("grpc_status"),
        error=record.get("error"),
        headers=record.get("headers", {}),
        echo=None if echo is None else Echo(echo["method"], echo["path"], echo["host"], echo["protocol"],
                                            echo["headers"]),
        flags=tuple(record.get("flags", ())),
        upstream_host=record.get("upstream_host"),
        body=record.get("body"),
    )


class ControlClient:
    """Calls to one echo instance's control port (127.0.0.1 only, proxies ignored)."""

    def __init__(self, port: int, instance: str | None = None) -> None:
        self.port = port
        self.instance = instance or f"on control port {port}"
        self._http = loopback_client(f"http://127.0.0.1:{port}", timeout=_CONTROL_TIMEOUT_S)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, what: str, *, timeout: float = _CONTROL_TIMEOUT_S,
              **kwargs: Any) -> Any:
        def unreachable(exc: httpx.TransportError) -> HarnessError:
            return ProcessError(f"echo app {self.instance}: {what} failed, control port {self.port} unreachable "
                                f"(did the process die?): {exc}")

        resp = bounded_request(self._http, method, path, timeout=timeout, unreachable=unreachable,
                               no_answer=f"echo app {self.instance}: {what} got no answer within {timeout:g}s",
                               **kwargs)
        if resp.status_code != 200:
            raise MeshError(f"echo app {self.instance}: {what} answered {resp.status_code}: {resp.text[:2000]}")
        return orjson.loads(resp.content)  # not resp.json(), the stdlib's: a batch's records decode in half the time

    def healthz(self) -> dict[str, Any]:
        return dict(self._call("GET", "/healthz", "health check"))

    def forward(self, spec: SendSpec, connect_to: str | None, capture_headers: Sequence[str] = (),
                source_ip: str | None = None) -> list[Observation]:
        """Run one ForwardEcho batch from this instance; one Observation per request, in order."""
        return [observation_from_json(r) for r in self.forward_records(spec, connect_to, capture_headers, source_ip)]

    def forward_records(self, spec: SendSpec, connect_to: str | None, capture_headers: Sequence[str] = (),
                        source_ip: str | None = None) -> list[dict[str, Any]]:
        """``forward``'s batch as the app's records, not read yet: what a mesh joins to its access log
        (``accesslog.BatchJoin``), which then reads each record once."""
        body = spec_to_json(spec, connect_to, capture_headers, source_ip)
        data = self._call("POST", "/forward", f"ForwardEcho of {spec.count} to {spec.url}", json=body,
                          timeout=spec.deadline_s + _FORWARD_MARGIN_S)
        return list(data["records"])

    def log(self, since: int = 0, *, after: float | None = None) -> list[ReceivedRequest]:
        """Every logged request with seq > ``since`` (and, with ``after``, received after that time);
        MeshError if the ring buffer evicted some unread."""
        out: list[ReceivedRequest] = []
        window = {} if after is None else {"after": repr(after)}
        for _ in range(_MAX_LOG_PAGES):
            page = self._call("GET", "/log", "reading the request log",
                              params={"since": since, "limit": _LOG_PAGE, **window})
            if page["dropped"]:
                raise MeshError(f"echo app {self.instance}: request log overflowed, {page['dropped']} entries after "
                                f"seq {since} were evicted before they were read; clear the log between checks "
                                "or raise --log-capacity")
            ident = (page["service"], page["version"], page["instance"])
            out.extend(ReceivedRequest(e["request_id"], *ident, e["method"], e["path"], e["host"], e["headers"],
                                       e["time"]) for e in page["entries"])
            if len(page["entries"]) < _LOG_PAGE:  # all there was when the page was read: no call for an empty one
                return out
            since = page["next"]
        raise MeshError(f"echo app {self.instance}: request log still had entries after {_MAX_LOG_PAGES} pages")

    def clear_log(self) -> None:
        self._call("POST", "/log/clear", "clearing the request log")
