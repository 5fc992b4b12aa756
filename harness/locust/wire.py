"""What crosses the boundary between the harness and its Locust process: the plan, and one record per response.

Locust patches the standard library with gevent when it is imported, so it runs in a process of
its own (``run.py`` starts it). The harness writes a ``LoadPlan`` as JSON for the shipped
locustfile; the locustfile writes one ``Record`` per response as a line of JSON, which the harness
reads back to judge. In a distributed run the workers send their records to the master in
``RecordBatch`` messages, and the master writes a ``WorkerLedger`` of what each delivered. Standard library only, so that the Locust process imports nothing else of the
harness. Pure: encoding and decoding, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from harness.sample_apps.echo.forward_spec import HeaderCycle, cycled_headers

#: Bumped when the plan's JSON shape changes; a locustfile refuses a plan of another version.
PLAN_VERSION = 1
#: What a plan's requests can speak; one plan speaks one (one Locust user class sends it).
PROTOCOLS = ("http", "grpc")


@dataclass(frozen=True)
class PlannedRequest:
    """One check's traffic as a Locust user sends it.

    The TCP connection goes to Locust's ``--host`` (the client sidecar's listener for the
    service port) and the Host header is ``authority``, the URL's authority as written: exactly
    what the client app's ForwardEcho does, and what iptables and the outbound listener do in a pod.
    ``headers_cycle`` gives the check's ``i``-th request the ``i mod n``-th value of each header.
    ``capture_headers`` names response headers to keep in each record (what ``expect.headers`` reads).
    ``protocol`` ``grpc``: a unary call to the method ``path`` with ``body`` as its raw message,
    the authority as the channel's ``:authority`` and the headers as metadata.
    """

    check: str
    method: str
    path: str
    authority: str
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    timeout_s: float = 30.0
    headers_cycle: HeaderCycle = ()
    capture_headers: tuple[str, ...] = ()
    protocol: str = "http"

    def headers_for(self, i: int) -> dict[str, str]:
        """The request headers of the check's ``i``-th request, Host first."""
        headers = {"Host": self.authority}
        headers.update(self.headers)
        headers.update(cycled_headers(self.headers_cycle, i))
        return headers


@dataclass(frozen=True)
class LoadPlan:
    """Every check a load run sends, in the order their records number them (``Record.check``).

    ``config_version`` is the version of the case's config on the master's mesh (None when not
    known): a worker on another machine, whose own mesh applied the same case under a version of
    its own, stamps its responses of that version with this one (``restamped``), so the master
    counts them as routed by the applied config.
    """

    requests: tuple[PlannedRequest, ...]
    config_version: str | None = None

    @property
    def protocol(self) -> str:
        """What the plan's requests speak (``plan_case`` never mixes them)."""
        return self.requests[0].protocol

    def to_json(self) -> str:
        return json.dumps({"version": PLAN_VERSION, "requests": [_request_json(r) for r in self.requests],
                           "config_version": self.config_version})

    @classmethod
    def from_json(cls, text: str) -> LoadPlan:
        """The plan in ``text``; ValueError saying what is wrong (a plan is written by the harness,
        or by hand for the plain ``locust -f`` entry point)."""
        try:
            raw = json.loads(text)
            if raw.get("version") != PLAN_VERSION:
                raise ValueError(f"plan version {raw.get('version')!r}, this locustfile reads version {PLAN_VERSION}")
            requests = tuple(_request_from(r) for r in raw["requests"])
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a load plan ({type(exc).__name__}: {exc}); write it with LoadPlan.to_json") from exc
        if not requests:
            raise ValueError("a load plan needs at least one request")
        version = raw.get("config_version")
        return cls(requests, None if version is None else str(version))


def plan_for_url(url: str, *, method: str = "GET", headers: Iterable[tuple[str, str]] = ()) -> LoadPlan:
    """A one-request plan for ``url`` as a pod would call it (``http://reviews:9080/path``): the
    plain ``locust -f ... --mesh-url URL`` entry point. ValueError when it is not such a URL."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.netloc:
        raise ValueError(f'expected a URL like "http://reviews:9080/path" (got {url!r})')
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return LoadPlan((PlannedRequest(check=url, method=method.upper(), path=path, authority=parts.netloc,
                                    headers=tuple(headers)),))


@dataclass(frozen=True)
class Record:
    """One response (or failed request) of a load run.

    ``check`` indexes ``LoadPlan.requests``. ``started`` is when the request was sent (seconds
    since the epoch), ``latency_s`` how long it took. ``status`` is the HTTP status, 0 when no
    response came (``error`` says why). ``version``, ``instance``, ``service`` name the app that
    answered (None when Envoy answered itself); ``config_version`` is the config that routed it.
    ``grpc_status`` is the call's gRPC status code for a gRPC request (None for HTTP); ``status``
    is then 200 when a peer answered, as in ForwardEcho's gRPC records.
    """

    check: int
    started: float
    latency_s: float
    status: int
    request_id: str = ""
    service: str | None = None
    version: str | None = None
    instance: str | None = None
    config_version: str | None = None
    error: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    grpc_status: int | None = None

    @property
    def failed(self) -> bool:
        """Failed as Locust counts it: no response, an HTTP status of 400 or more, or a gRPC status other than OK."""
        return self.status == 0 or self.status >= 400 or bool(self.grpc_status)


# Short keys keep a record near 100 bytes: a 60 s run at 7k requests/s writes about 40 MB.
_KEYS = (("check", "c"), ("started", "t"), ("latency_s", "l"), ("status", "s"), ("request_id", "id"),
         ("service", "svc"), ("version", "v"), ("instance", "i"), ("config_version", "cv"), ("error", "e"),
         ("headers", "h"), ("grpc_status", "g"))
_REQUIRED = ("c", "t", "l", "s")


def restamped(record: Record, own_version: str | None, plan_version: str | None) -> Record:
    """``record`` as routed by the plan's config version when its own mesh's applied version routed it.

    A remote worker's mesh applied the case itself (``own_version``); the master judges against
    its own (``plan_version``). Responses of any other version stay as they are (stale either way).
    """
    if own_version is None or plan_version is None or record.config_version != own_version:
        return record
    return replace(record, config_version=plan_version)


def encode_record(record: Record) -> str:
    """One line of JSON (with its newline); fields that are empty are left out."""
    out = {short: getattr(record, name) for name, short in _KEYS if getattr(record, name) not in (None, "", {})}
    return json.dumps(out, separators=(",", ":")) + "\n"


def decode_records(lines: Iterable[str], source: str) -> list[Record]:
    """Every record in ``lines``; ValueError naming ``source`` and the line that is not a record."""
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            missing = [k for k in _REQUIRED if k not in raw]
            if missing:
                raise ValueError(f"missing {', '.join(missing)}")
            records.append(_record_from(raw))
        except (ValueError, TypeError, AttributeError) as exc:
            raise ValueError(f"{source}:{number}: not a load record ({exc}): {line[:200]!r}") from exc
    return records


def _record_from(raw: dict[str, Any]) -> Record:
    def text(key: str) -> str | None:
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{key} must be a string (got {value!r})")
        return value

    headers = raw.get("h", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise ValueError(f"h must map header names to strings (got {headers!r})")
    check, status = raw["c"], raw["s"]
    if not (isinstance(check, int) and isinstance(status, int)) or isinstance(check, bool) or isinstance(status, bool):
        raise ValueError(f"c and s must be integers (got {check!r}, {status!r})")
    return Record(
        check=check, started=float(raw["t"]), latency_s=float(raw["l"]), status=status,
        request_id=text("id") or "", service=text("svc"), version=text("v"), instance=text("i"),
        config_version=text("cv"), error=text("e"), headers=headers, grpc_status=_grpc_status(raw.get("g")),
    )


def _grpc_status(value: Any) -> int | None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise ValueError(f"g must be an integer gRPC status (got {value!r})")
    return value


def _protocol(value: Any) -> str:
    if value not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)} (got {value!r})")
    return str(value)


def _request_json(r: PlannedRequest) -> dict[str, Any]:
    return {"check": r.check, "method": r.method, "path": r.path, "authority": r.authority,
            "headers": [list(h) for h in r.headers], "body": r.body, "timeout_s": r.timeout_s,
            "headers_cycle": [[name, list(values)] for name, values in r.headers_cycle],
            "capture_headers": list(r.capture_headers), "protocol": r.protocol}


def _request_from(raw: dict[str, Any]) -> PlannedRequest:
    cycle = tuple((str(name), tuple(str(v) for v in values)) for name, values in raw.get("headers_cycle", ()))
    if any(not values for _, values in cycle):
        raise ValueError("headers_cycle: every header needs at least one value")
    return PlannedRequest(
        check=str(raw["check"]), method=str(raw.get("method", "GET")).upper(), path=str(raw.get("path", "/")),
        authority=str(raw["authority"]), headers=tuple((str(k), str(v)) for k, v in raw.get("headers", ())),
        body=str(raw.get("body", "")), timeout_s=float(raw.get("timeout_s", 30.0)), headers_cycle=cycle,
        capture_headers=tuple(str(h).lower() for h in raw.get("capture_headers", ())),
        protocol=_protocol(raw.get("protocol", "http")),
    )


@dataclass(frozen=True)
class RecordBatch:
    """Records a Locust worker relays to its master (Locust's ``runner.send_message``).

    ``lines`` are encoded records (``encode_record``); ``final`` marks the worker's last batch,
    sent when its test stops, so the master can tell a worker that finished from one that died.
    """

    worker: str
    lines: str
    final: bool = False

    def to_message(self) -> dict[str, Any]:
        return {"worker": self.worker, "lines": self.lines, "final": self.final}

    @classmethod
    def from_message(cls, data: Any) -> RecordBatch:
        """The batch in a message's data; ValueError when it is not one (a worker of another harness version)."""
        if not isinstance(data, dict) or not isinstance(data.get("worker"), str) or not isinstance(data.get("lines"), str):
            raise ValueError(f"not a record batch (want worker, lines, final; got {str(data)[:200]})")
        return cls(data["worker"], data["lines"], bool(data.get("final")))


class WorkerLedger:
    """What a Locust master heard from each worker: connected, how many records, whether its last batch came.

    Locust names workers by client id (``host_uuid``); a worker also says its own name in each batch
    (``mesh-harness`` gives its local workers ``worker-1``...), which is what the harness reports.
    A worker that connected but whose final batch never came died (or lost its connection) mid-run.
    """

    def __init__(self) -> None:
        self._names: dict[str, str] = {}
        self._records: dict[str, int] = {}
        self._finished: set[str] = set()

    def connected(self, client_id: str) -> None:
        self._names.setdefault(client_id, client_id)
        self._records.setdefault(client_id, 0)

    def received(self, client_id: str, batch: RecordBatch) -> None:
        self.connected(client_id)
        self._names[client_id] = batch.worker
        self._records[client_id] += batch.lines.count("\n")
        if batch.final:
            self._finished.add(client_id)

    def all_finished(self) -> bool:
        return self._finished >= self._names.keys()

    def to_json(self) -> str:
        return json.dumps({"workers": [
            {"id": c, "name": self._names[c], "records": self._records[c], "finished": c in self._finished}
            for c in sorted(self._names)]})


@dataclass(frozen=True)
class WorkerShare:
    """What one worker delivered to the master: its name, its records, whether its final batch came."""

    name: str
    records: int
    finished: bool


def read_ledger(ledger_json: str, source: str) -> tuple[WorkerShare, ...]:
    """Each worker of a master's ledger (``WorkerLedger.to_json``); ValueError naming ``source`` when unreadable."""
    try:
        return tuple(WorkerShare(str(w["name"]), int(w["records"]), bool(w["finished"]))
                     for w in json.loads(ledger_json)["workers"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{source}: not a worker ledger ({type(exc).__name__}: {exc})") from exc
