"""Expectations joined to app logs by request id: ``attempts``, ``mirror`` and ``received``.

Every request carries an ``x-request-id``; Envoy keeps it on retries and on mirrored copies, and
each app instance logs the ids it received. After a batch the runner waits for ``Mesh.drain``
(mirrored copies are fire-and-forget and may land after the caller has its response), reads every
app log of the topology and hands each request its copies (``Sample.copies``). Requests must get
fresh ids for this, so a check that uses these keys may not set ``x-request-id`` itself.

What is counted:

* ``attempts``: copies the target service (the URL's) received, over all its versions and
  instances: 1 without retries. Mirrored copies to the same service count too, so do not combine
  a mirror to the target service with ``attempts``.
* ``mirror``: copies the mirror target (service, optionally one version) received, less the one
  that produced the response when the answering app is itself the target.
* ``received: none``: no app anywhere received the request (a fault abort, a direct response).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from harness.expect.base import (
    NO_RESPONSE,
    Classifier,
    Expectation,
    Need,
    Sample,
    answered,
)
from harness.mesh.base import ReceivedRequest

MIRRORED = "mirrored"
NOT_MIRRORED = "not mirrored"
RECEIVED_NONE = "none"
RECEIVED = "received"

_APP_LOG: frozenset[Need] = frozenset({"app_log"})


@dataclass(frozen=True)
class Attempts(Classifier):
    """How many copies of the request ``service`` received, as a number (``"3"``)."""

    service: str

    @property
    def needs(self) -> frozenset[Need]:
        return _APP_LOG

    def category(self, sample: Sample) -> str:
        if not answered(sample.obs):
            return NO_RESPONSE
        return str(sum(1 for c in sample.copies if c.service == self.service))


@dataclass(frozen=True)
class Mirror(Classifier):
    """Whether the mirror target received a copy; with ``host``, a copy with another Host is its own category."""

    service: str
    version: str | None = None
    host: str | None = None

    @property
    def needs(self) -> frozenset[Need]:
        return _APP_LOG

    def category(self, sample: Sample) -> str:
        copies = self.mirrored_copies(sample)
        if not copies:
            return NOT_MIRRORED
        wrong = next((c.host for c in copies if self.host is not None and c.host != self.host), None)
        return MIRRORED if wrong is None else f"{MIRRORED} with host {wrong}"

    def mirrored_copies(self, sample: Sample) -> list[ReceivedRequest]:
        """The target's copies of the request, without the one that answered the caller."""
        obs = sample.obs
        at_target = [c for c in sample.copies if c.service == self.service and self.version in (None, c.version)]
        answering = next((c for c in at_target if c.instance == obs.instance), None)
        if answering is not None:
            at_target.remove(answering)
        return at_target


@dataclass(frozen=True)
class Received(Classifier):
    """``none`` when no app received the request, else which instances did (``reviews-v1-0 x2``)."""

    @property
    def needs(self) -> frozenset[Need]:
        return _APP_LOG

    def category(self, sample: Sample) -> str:
        if not sample.copies:
            return RECEIVED_NONE
        return RECEIVED

    def detail(self, sample: Sample) -> str:
        if not sample.copies:
            return RECEIVED_NONE
        counts = Counter(c.instance for c in sample.copies)
        return "received by " + ", ".join(f"{k} x{v}" if v > 1 else k for k, v in sorted(counts.items()))


def attempts(service: str, value: int | dict[int, float]) -> Expectation:
    """``attempts("reviews", 3)``: every request reached ``service`` 3 times; or ``{1: 0.5, 2: 0.5}``."""
    if isinstance(value, int):
        return Expectation("attempts", Attempts(service), every=str(value))
    return Expectation("attempts", Attempts(service), fractions={str(k): v for k, v in value.items()})


def mirror(service: str, fraction: float, *, version: str | None = None, host: str | None = None, field: str = "mirror") -> Expectation:
    """The target received a copy of a share ``fraction`` of requests (1.0 / 0.0: every / none, no statistics)."""
    classify = Mirror(service, version, host)
    if fraction in (0.0, 1.0):
        return Expectation(field, classify, every=MIRRORED if fraction == 1.0 else NOT_MIRRORED)
    return Expectation(field, classify, fractions={MIRRORED: fraction, NOT_MIRRORED: 1.0 - fraction})


def received_none() -> Expectation:
    """No app received any of the requests (Envoy answered every one itself)."""
    return Expectation("received", Received(), every=RECEIVED_NONE)


def received(fraction: float) -> Expectation:
    """A share ``fraction`` of requests reached some app (1.0 / 0.0: every / none, no statistics), e.g.
    0.7 when a fault aborts 30%: judged as a split of ``received`` and ``none``, like the other fractions."""
    if fraction == 0.0:
        return received_none()
    if fraction == 1.0:
        return Expectation("received", Received(), every=RECEIVED)
    return Expectation("received", Received(), fractions={RECEIVED: fraction, RECEIVED_NONE: 1.0 - fraction})
