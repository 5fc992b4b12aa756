"""An in-memory ``Mesh`` that answers with scripted replies: the runner, CLI, pytest plugin and
reports are tested against it without processes or sockets (as httpx's ``MockTransport``).

A *handler* decides each reply: ``handler(spec, rng) -> Reply``, called once per request with the
batch's ``SendSpec`` and the mesh's seeded ``random.Random``, so a run is reproducible from its
seed. ``draw(...)`` builds the usual handler (versions and statuses drawn from given fractions);
a handler may also raise a ``HarnessError`` to act out a mesh failure during ``send``.

A reply also scripts what the rest of the mesh saw, so that every expectation can be judged
without Envoy: its Envoy response flags and latency, the echo of what the app received (when the
spec asks for echoes), the copies app instances logged under its request id (``copies``: retries,
mirrored copies; by default one copy at the answering instance) and the counters it added to
the client's sidecar stats (``stats``).

The fake records what it was asked to do (``deployed``, ``applied``, ``reverted``, ``sent``) and
keeps a config version like a real mesh: ``apply`` and ``revert`` each make a new version, and
replies are stamped with the version in force unless the reply says it is stale or unstamped.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Self, TypeVar
from urllib.parse import urlsplit

from harness.errors import HarnessError, MeshError
from harness.istio.model import IstioObject
from harness.mesh.base import (
    Echo,
    MeshInfo,
    Observation,
    ReceivedRequest,
    SendSpec,
    SyncToken,
)
from harness.topology import Topology

FAKE_INFO = MeshInfo(kind="local", istio_version="fake", envoy_version="fake", timer_tick_s=0.0)  # scripted latencies, no timers


@dataclass(frozen=True)
class Copy:
    """One request an app instance logged for a reply (``reviews-v2-0`` by default). ``host`` and
    ``path`` default to the URL's authority and path."""

    service: str = "reviews"
    version: str = "v1"
    replica: int = 0
    host: str | None = None
    path: str | None = None

    @property
    def instance(self) -> str:
        return f"{self.service}-{self.version}-{self.replica}"


@dataclass(frozen=True)
class Reply:
    """One scripted response. ``version=None`` is a reply Envoy made itself (404 NR, 503 UH);
    ``status=0`` with ``error`` is a request that got no response. ``stale`` stamps the reply with
    the config version before the one in force; ``stamped=False`` leaves it unstamped (a local
    reply that no route produced). ``replica`` picks the answering instance. ``copies`` (None: one
    at the answering instance, none when Envoy answered) go to the app logs; ``echo`` overrides the
    echo built from the spec; ``stats`` are added to the client sidecar's counters; ``body`` is the
    response body, kept in the Observation when the spec asks for bodies."""

    status: int = 200
    version: str | None = "v1"
    service: str | None = "reviews"
    error: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    stale: bool = False
    stamped: bool = True
    flags: tuple[str, ...] = ()
    latency_s: float = 0.001
    replica: int = 0
    grpc_status: int | None = None
    copies: tuple[Copy, ...] | None = None
    echo: Echo | None = None
    stats: Mapping[str, int] = field(default_factory=dict)
    body: str = ""

    def logged(self) -> tuple[Copy, ...]:
        if self.copies is not None:
            return self.copies
        if self.version is None or self.service is None:
            return ()
        return (Copy(self.service, self.version, self.replica),)


Handler = Callable[[SendSpec, random.Random], Reply]
_K = TypeVar("_K")


def draw(
    versions: Mapping[str | None, float] | None = None,
    statuses: Mapping[int, float] | None = None,
) -> Handler:
    """A handler drawing each reply's version and status independently from the given fractions
    (weights, normalized by ``random.choices``); defaults: every reply from v1 with status 200.
    A ``None`` version is an Envoy-local reply (no app answered)."""
    version_weights: Mapping[str | None, float] = versions or {"v1": 1.0}
    status_weights: Mapping[int, float] = statuses or {200: 1.0}

    def handler(spec: SendSpec, rng: random.Random) -> Reply:
        version = _choose(version_weights, rng)
        return Reply(status=_choose(status_weights, rng), version=version, service=None if version is None else "reviews")

    return handler


def _choose(weights: Mapping[_K, float], rng: random.Random) -> _K:
    if len(weights) == 1:
        return next(iter(weights))
    return rng.choices(list(weights), weights=list(weights.values()))[0]


class FakeMesh:
    """A ``Mesh`` whose traffic comes from ``handler``; see the module docstring.

    ``fail_apply`` is raised by ``apply`` (nothing is applied then), as a real mesh raises
    ``ConfigRejected`` or ``SyncTimeout``. Usable as a context manager, like ``LocalMesh``.
    """

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        seed: int = 0,
        fail_apply: HarnessError | None = None,
        info: MeshInfo = FAKE_INFO,
    ) -> None:
        self.handler = handler or draw()
        self.rng = random.Random(seed)
        self.fail_apply = fail_apply
        self._info = info
        self.version = 0
        self.objects: tuple[IstioObject, ...] = ()
        self.deployed: list[Topology] = []
        self.applied: list[tuple[IstioObject, ...]] = []
        self.reverted: list[SyncToken] = []
        self.sent: list[SendSpec] = []
        self.drained: list[float] = []
        self.received: list[ReceivedRequest] = []
        self.stats: dict[str, int] = {}
        self.closed = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def info(self) -> MeshInfo:
        return self._info

    def deploy(self, topology: Topology) -> None:
        self._check_open()
        self.deployed.append(topology)

    def apply(self, objects: Sequence[IstioObject]) -> SyncToken:
        self._check_open()
        if self.fail_apply is not None:
            raise self.fail_apply
        token = SyncToken(self.version + 1, self.objects)
        self.objects = (*self.objects, *objects)
        self.applied.append(tuple(objects))
        self.version = token.version
        return token

    def revert(self, token: SyncToken) -> None:
        self._check_open()
        self.objects = token.previous
        self.reverted.append(token)
        self.version += 1

    def send(self, spec: SendSpec) -> list[Observation]:
        self._check_open()
        self.sent.append(spec)
        first = sum(s.count for s in self.sent[:-1])
        # the handler sees each request's own headers, as an app would
        alone = ([replace(spec, headers=spec.headers_of(i), headers_cycle=()) for i in range(spec.count)]
                 if spec.headers_cycle else [spec] * spec.count)
        return [self._observe(one, first + i, i, self.handler(one, self.rng)) for i, one in enumerate(alone)]

    def proxy_stats(self, workload: str) -> dict[str, int]:
        self._check_open()
        return dict(self.stats)

    def app_log(self, service: str, version: str | None = None, *, since: float = 0.0) -> list[ReceivedRequest]:
        self._check_open()
        return [r for r in self.received if r.service == service and version in (None, r.version) and r.time > since]

    def drain(self, timeout_s: float = 10.0) -> None:
        """Nothing is ever in flight here; records the call so tests can see it was made."""
        self._check_open()
        self.drained.append(timeout_s)

    def close(self) -> None:
        self.closed = True

    def _observe(self, spec: SendSpec, serial: int, index: int, reply: Reply) -> Observation:
        stamp: str | None = None
        if reply.stamped:
            stamp = str(self.version - 1 if reply.stale else self.version)
        request_id = f"fake-{serial}"
        parts = urlsplit(spec.url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        for copy in reply.logged():
            self.received.append(ReceivedRequest(
                request_id, copy.service, copy.version, copy.instance, spec.method, copy.path or path,
                copy.host or parts.netloc, dict(spec.headers), time.time(),
            ))
        for name, value in reply.stats.items():
            self.stats[name] = self.stats.get(name, 0) + value
        answered = reply.version is not None
        echo = reply.echo
        if echo is None and spec.include_echo and answered:
            echo = Echo(spec.method, path, parts.netloc, "HTTP/1.1", {**dict(spec.headers), "x-request-id": request_id})
        return Observation(
            index=index,
            request_id=request_id,
            status=reply.status,
            latency_s=reply.latency_s,
            service=reply.service if answered else None,
            version=reply.version,
            instance=f"{reply.service}-{reply.version}-{reply.replica}" if answered else None,
            config_version=stamp,
            grpc_status=reply.grpc_status,
            error=reply.error,
            headers=dict(reply.headers),
            echo=echo if spec.include_echo else None,
            flags=reply.flags,
            body=reply.body[:spec.capture_body] if spec.capture_body else None,
        )

    def _check_open(self) -> None:
        if self.closed:
            raise MeshError("the fake mesh is closed")
