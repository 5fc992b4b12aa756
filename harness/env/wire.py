"""The JSON that crosses the daemon's API: typed records and harness errors, both ways.

An error raised inside the daemon reaches the command as the same exception class with the same
message (a ``ValidationError`` keeps its issues, a ``ConfigRejected`` its NACK fields), so the
CLI prints it and picks the exit code exactly as if the mesh ran in-process. Pure.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

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
from harness.mesh.base import Echo, Observation, ReceivedRequest

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


def encode_observation(o: Observation) -> dict[str, Any]:
    return asdict(o)


def decode_observation(d: dict[str, Any]) -> Observation:
    echo = d.get("echo")
    return Observation(**{**d, "echo": None if echo is None else Echo(**echo), "flags": tuple(d.get("flags", ()))})


def encode_received(r: ReceivedRequest) -> dict[str, Any]:
    return asdict(r)


def decode_received(d: dict[str, Any]) -> ReceivedRequest:
    return ReceivedRequest(**d)
