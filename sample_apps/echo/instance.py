"""The state one echo instance shares between its HTTP, gRPC and control servers.

Who it is (service/version/instance), its default knobs, its request log and fail-first counts,
and the two things both protocol servers produce the same way: identity headers and the JSON echo.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from harness.sample_apps.echo import fields
from harness.sample_apps.echo.knobs import AttemptCounter, Knobs
from harness.sample_apps.echo.requestlog import RequestLog

SHUTDOWN_GRACE_S = 0.1
"""How long a stopping instance lets in-flight requests run (a delayed answer, a ForwardEcho batch)
before it cancels them: whoever stops an instance is done with it, and aiohttp's default (60 s)
would hold an interrupted run until its parent gives up and kills the process."""
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def _seeded_rng() -> random.Random:
    return random.Random(os.urandom(32))


@dataclass
class EchoInstance:
    """One running instance. Used from a single asyncio loop only (no locking)."""

    service: str
    version: str
    instance: str
    defaults: Knobs
    log: RequestLog
    attempts: AttemptCounter = field(default_factory=AttemptCounter)
    rng: random.Random = field(default_factory=_seeded_rng)

    def identity_headers(self) -> list[tuple[str, str]]:
        return [
            (fields.SERVICE_HEADER, self.service),
            (fields.VERSION_HEADER, self.version),
            (fields.INSTANCE_HEADER, self.instance),
        ]

    def echo_body(self, method: str, path: str, host: str, protocol: str, headers: Mapping[str, str],
                  error: str | None = None) -> bytes:
        """The JSON reply body: what this instance received, and who it is."""
        body: dict[str, object] = {
            "service": self.service,
            "version": self.version,
            "instance": self.instance,
            "method": method,
            "path": path,
            "host": host,
            "protocol": protocol,
            "headers": dict(headers),
        }
        if error is not None:
            body["error"] = error
        return _ENCODER.encode(body).encode()


def trace_headers(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """The trace headers of a request (lower-cased names), to echo back on the reply."""
    return [(name, headers[name]) for name in fields.TRACE_HEADERS if name in headers]
