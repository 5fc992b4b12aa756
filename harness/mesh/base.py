"""The interface every mesh implements, and the typed records that cross it.

Cases, verdicts and reports only ever see these types, so they run unchanged on the embedded
local mesh and on real Istio. Envoy protos and Kubernetes objects never leave their backend.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from harness.istio.model import IstioObject
from harness.sample_apps.echo.forward_spec import HeaderCycle, cycled_headers
from harness.topology import Topology

WireProtocol = Literal["http", "http2", "grpc"]
ControlPlaneName = Literal["builtin", "istiod"]
CONTROL_PLANES: tuple[ControlPlaneName, ...] = ("builtin", "istiod")
"""What can configure the local mesh's Envoys: the harness's translator, or real istiod."""


@dataclass(frozen=True)
class SendSpec:
    """Traffic for one batch, sent by a client workload through its own sidecar (ForwardEcho).

    ``url`` names the service as a pod would (``http://reviews:9080/path?q=1``); the mesh routes it
    through the caller's sidecar and keeps the Host header. ``rate`` is requests per second over
    the whole batch (None = as fast as ``concurrency`` allows). ``new_connection`` opens a fresh
    connection per request instead of keep-alive. ``timeout_s`` bounds each request;
    ``deadline_s`` bounds the whole batch. ``capture_headers`` names response headers to keep in
    each Observation besides ``x-envoy-*``, ``server`` and ``content-type`` (``location``, CORS headers).
    ``capture_body`` keeps the first that many bytes of each response body (as text) in its
    Observation; 0, the default, keeps none, since most checks never read a body.
    ``via="gateway"`` sends to the ingress gateway's listener for the URL's port instead, as a caller
    outside the mesh would; the URL's host (``http://bookinfo.example.com/``) is the Host header that
    the Gateway's server hosts and the bound VirtualServices match.
    ``headers_cycle`` gives request ``i`` of the batch the ``i mod n``-th value of each of its headers
    besides ``headers`` (many hash keys in one batch, instead of a batch per key).
    """

    url: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    count: int = 1
    concurrency: int = 16
    rate: float | None = None
    protocol: WireProtocol = "http"
    new_connection: bool = False
    timeout_s: float = 30.0
    deadline_s: float = 120.0
    client: str = "client"
    grpc_method: str = "/echo.Echo/Call"
    include_echo: bool = False
    capture_headers: tuple[str, ...] = ()
    capture_body: int = 0
    via: Literal["sidecar", "gateway"] = "sidecar"
    headers_cycle: HeaderCycle = ()

    def headers_of(self, index: int) -> tuple[tuple[str, str], ...]:
        """Every header request ``index`` of the batch carries: ``headers`` and its values of ``headers_cycle``."""
        return (*self.headers, *cycled_headers(self.headers_cycle, index))


@dataclass(frozen=True)
class Echo:
    """What the answering app received, as it echoed it back (only when ``include_echo``)."""

    method: str
    path: str
    host: str
    protocol: str
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Observation:
    """One request as the caller saw it.

    ``status`` is the HTTP status, or 0 when no response came (then ``error`` says why).
    ``service``/``version``/``instance`` identify the app that answered; they are None when Envoy
    answered locally (404 NR, fault abort, 503 UH ...). ``config_version`` is the mesh config
    version stamped on the route that served the request, so that responses served by an older
    config can be told apart. Header names are lower case. ``body`` is the response body's start
    as text (``SendSpec.capture_body`` bytes, invalid UTF-8 replaced), None unless it was asked for.
    """

    index: int
    request_id: str
    status: int
    latency_s: float
    service: str | None = None
    version: str | None = None
    instance: str | None = None
    config_version: str | None = None
    grpc_status: int | None = None
    error: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    echo: Echo | None = None
    flags: tuple[str, ...] = ()
    upstream_host: str | None = None
    body: str | None = None


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as an app instance received it (its request log), joined to callers by request id."""

    request_id: str
    service: str
    version: str
    instance: str
    method: str
    path: str
    host: str
    headers: Mapping[str, str]
    time: float


@dataclass(frozen=True)
class SyncToken:
    """What ``apply`` returns: the config version every proxy has ACKed, and how to undo it."""

    version: int
    previous: tuple[IstioObject, ...]


@dataclass(frozen=True)
class MeshInfo:
    """Identity of a mesh for reports and upgrade diffs, and the tick of its proxies' timer clock
    (the tolerance of latency lower bounds, ``harness.expect.latency``)."""

    kind: Literal["local", "kind", "cluster"]
    istio_version: str
    envoy_version: str
    timer_tick_s: float


#: The coarsest tick a Linux kernel's coarse clock can have (CONFIG_HZ=100): the timer tick assumed
#: where the proxies' kernel cannot be read (the nodes of a cluster).
COARSEST_KERNEL_TICK_S = 0.010
#: Linux's CLOCK_MONOTONIC_COARSE, which Python's ``time`` module does not name.
_CLOCK_MONOTONIC_COARSE = 6


def coarse_clock_tick_s() -> float:
    """The tick of this host's coarse monotonic clock, the clock an Envoy started here times with
    (libevent reads it unless EVENT_PRECISE_TIMER is set); the coarsest tick where it cannot be read."""
    try:
        tick = time.clock_getres(_CLOCK_MONOTONIC_COARSE)
    except (OSError, OverflowError):
        return COARSEST_KERNEL_TICK_S
    return tick if 0.0 < tick <= COARSEST_KERNEL_TICK_S else COARSEST_KERNEL_TICK_S


def describe_istio(istio_version: str) -> str:
    """``MeshInfo.istio_version`` as a phrase for a run's first line: the builtin plane emulates a release, istiod is one."""
    return istio_version if istio_version.startswith("istiod ") else f"emulating Istio {istio_version}"



@runtime_checkable
class Mesh(Protocol):
    """A service mesh the harness can configure and send traffic through.

    Every method blocks until its effect is complete; all waits are bounded and raise
    ``SyncTimeout`` naming what they waited for. Methods are not safe to call concurrently.
    """

    def info(self) -> MeshInfo: ...

    def deploy(self, topology: Topology) -> None:
        """Start (or reconfigure to) the sample apps and client workloads of ``topology``."""

    def apply(self, objects: Sequence[IstioObject]) -> SyncToken:
        """Add or replace Istio objects; return once every proxy ACKed the result.

        A NACK raises ``ConfigRejected`` after the previous config has been restored, so nothing
        stays half-applied.
        """

    def send(self, spec: SendSpec) -> list[Observation]:
        """Send one batch of requests from inside the mesh; one Observation per request, in order."""

    def proxy_stats(self, workload: str) -> dict[str, int]:
        """Counters and gauges of the workload's sidecar (Envoy admin /stats)."""

    def app_log(self, service: str, version: str | None = None, *, since: float = 0.0) -> list[ReceivedRequest]:
        """What each app instance of ``service`` (optionally one version) received so far, oldest first.

        ``since`` (seconds since the epoch, this machine's clock): only what arrived after it is
        needed, so that a check reads its own traffic, not every request of a long-lived mesh. A
        mesh whose apps run on another clock may return older entries too; callers join by request id.
        """

    def drain(self, timeout_s: float = 10.0) -> None:
        """Return once no request is in flight on any sidecar, fire-and-forget mirror copies included.

        ``send`` returns when the caller has its responses, but a mirrored copy (or a request still
        waiting out a fault delay for a caller that gave up) may still be on its way; app logs and
        proxy stats read before ``drain`` can miss it. ``SyncTimeout`` names what is still active.
        """

    def revert(self, token: SyncToken) -> None:
        """Restore the config that was in force before ``apply`` returned ``token``; wait for ACKs."""

    def close(self) -> None:
        """Stop everything this mesh started: processes, ports, temp dirs. Idempotent."""


@runtime_checkable
class SidecarListeners(Protocol):
    """A mesh whose sidecars listen on this machine, so that traffic can go straight to one.

    The local mesh, and an environment attached with ``--mesh-attach`` (from its daemon's status);
    not a cluster, whose sidecars listen inside pods. ``mesh-harness load`` points Locust there.
    """

    def listener_address(self, client: str, port: int) -> str | None:
        """``ip:port`` where ``client``'s sidecar listens for service port ``port``; None when none does."""
