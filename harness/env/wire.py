"""The JSON that crosses the daemon's API: typed records, Istio objects, topologies, batches and
harness errors, both ways. Observations travel in the echo app's record format, read and written
by ``harness.mesh.echo_client`` (``observation_from_json``), not by a second codec here.

An error raised inside the daemon reaches the command as the same exception class with the same
message (a ``ValidationError`` keeps its issues, a ``ConfigRejected`` its NACK fields), so the
CLI prints it and picks the exit code exactly as if the mesh ran in-process. Pure.
"""

from __future__ import annotations

import base64
from dataclasses import asdict
from typing import Any

import pydantic

from harness.errors import (
    CaseError,
    CaseSyntaxError,
    ConfigRejected,
    HarnessError,
    Issue,
    MeshError,
    ProcessError,
    SyncTimeout,
    UnsupportedError,
    ValidationError,
)
from harness.istio.model import KINDS, IstioObject, Source
from harness.mesh.base import ReceivedRequest, SendSpec
from harness.topology import Client, Service, ServicePort, Topology

_PLAIN: dict[str, type[HarnessError]] = {
    cls.__name__: cls for cls in (HarnessError, CaseError, CaseSyntaxError, MeshError, SyncTimeout, ProcessError)
}


def encode_error(exc: HarnessError) -> dict[str, Any]:
    body: dict[str, Any] = {"error": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, ValidationError):
        body["issues"] = [asdict(i) for i in exc.issues]
    if isinstance(exc, ConfigRejected):
        body["rejected"] = {"node": exc.node, "type_name": exc.type_name, "version": exc.version, "detail": exc.detail}
    return body


def decode_error(body: dict[str, Any]) -> HarnessError:
    """The exception ``encode_error`` described; an unknown kind becomes a ``MeshError`` with its message."""
    kind, message = str(body.get("error", "MeshError")), str(body.get("message", body))
    if "issues" in body:
        issues = [Issue(**i) for i in body["issues"]]
        return UnsupportedError(issues) if kind == UnsupportedError.__name__ else ValidationError(issues)
    if "rejected" in body:
        return ConfigRejected(**body["rejected"])
    cls = _PLAIN.get(kind)
    if cls is None or cls is HarnessError:
        return MeshError(message)
    return cls(message)


def decode_received(d: dict[str, Any]) -> ReceivedRequest:
    """A ReceivedRequest from the fields the daemon's orjson wrote (``EnvService.app_log``)."""
    return ReceivedRequest(**d)


def encode_object(o: IstioObject) -> dict[str, Any]:
    """An Istio object as proto-JSON, with its source (file, line, field lines) kept for error messages."""
    body = o.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"source"})
    if o.source is not None:
        s = o.source
        body["source"] = {"file": s.file, "line": s.line, "lines": [[list(path), line] for path, line in s.lines.items()]}
    return body


def decode_object(d: dict[str, Any]) -> IstioObject:
    """The object ``encode_object`` described; a body this harness cannot read is a ``MeshError``
    (the command and the daemon run different harness versions)."""
    cls = KINDS.get(str(d.get("kind")))
    src = d.get("source")
    try:
        if cls is None:
            raise ValueError(f"unknown kind {d.get('kind')!r}")
        source = None if src is None else Source(file=src["file"], line=src["line"],
                                                 lines={tuple(path): line for path, line in src["lines"]})
        return cls.model_validate({**d, "source": source})
    except (pydantic.ValidationError, KeyError, TypeError, ValueError) as exc:
        raise MeshError(f"unreadable Istio object {d.get('kind')}/{d.get('metadata', {}).get('name')} on the "
                        f"environment API ({exc}); do the command and the environment run the same mesh-harness?") from exc


def encode_topology(t: Topology) -> dict[str, Any]:
    return asdict(t)


def decode_topology(d: dict[str, Any]) -> Topology:
    """The topology ``encode_topology`` described (lists back to the tuples the dataclasses hold)."""
    services = tuple(
        Service(name=s["name"], versions=tuple(s["versions"]), replicas=tuple((v, n) for v, n in s["replicas"]),
                ports=tuple(ServicePort(p["name"], p["number"]) for p in s["ports"]), namespace=s["namespace"],
                knobs=tuple((key, tuple((k, v) for k, v in values)) for key, values in s["knobs"]),
                external=s["external"])
        for s in d["services"]
    )
    clients = tuple(Client(name=c["name"], labels=tuple((k, v) for k, v in c["labels"]), namespace=c["namespace"],
                           source_ip=c["source_ip"]) for c in d["clients"])
    return Topology(services=services, clients=clients, gateway=d["gateway"])


def encode_send_spec(spec: SendSpec) -> dict[str, Any]:
    """A batch as JSON, every field kept; the body travels as base64.

    Not the echo app's /forward body (``harness.mesh.echo_client.spec_to_json``), on purpose: the
    daemon's mesh still has to pick the sending client (``client``, ``via``), the address to connect
    to and the protocol it can carry, so the whole ``SendSpec`` crosses, and ``decode_send_spec``
    accepts a partial one. Observations, by contrast, come back in the echo app's record format
    (every field of the dataclass, as the daemon's orjson writes it), so one reader serves both.
    """
    return {**asdict(spec), "body": base64.b64encode(spec.body).decode()}


def decode_send_spec(d: dict[str, Any]) -> SendSpec:
    """The batch ``encode_send_spec`` described; absent fields take ``SendSpec``'s defaults
    (``mesh-harness send`` gives only url, method, headers, count, concurrency)."""
    fields: dict[str, Any] = {k: v for k, v in d.items() if k in SendSpec.__dataclass_fields__}
    try:
        fields["body"] = base64.b64decode(str(fields.get("body", "")), validate=True)
        fields["headers"] = tuple((str(k), str(v)) for k, v in fields.get("headers", ()))
        fields["capture_headers"] = tuple(str(h) for h in fields.get("capture_headers", ()))
        fields["headers_cycle"] = tuple((str(name), tuple(str(v) for v in values))
                                        for name, values in fields.get("headers_cycle", ()))
        return SendSpec(**fields)
    except (TypeError, ValueError) as exc:
        raise MeshError(f"send: malformed request on the environment API ({exc})") from exc
