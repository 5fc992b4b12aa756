"""What every ``expect`` key shares: a property of each request, judged for every request or as a split.

Each key of ``expect`` names a property of one request in the vocabulary the echo app and
``Observation`` share (``version``, ``status``, ``grpc_status``, ``flags``, ...). A *classifier*
maps a request to the category it falls in (``"v2"``, ``"503"``, ``"UO"``); an ``Expectation``
says which category every request must be in (``every``), or which split of categories a random
policy must produce (``fractions``). Judging lives in ``harness.verdict``; this module is pure data.

A request is judged as a ``Sample``: what the caller saw, plus every copy that any app logged under
the request's id (retries, mirrored copies), for the keys that need app logs. Classifiers say what
they need (``needs``) so the runner asks the mesh only for that: echoes, app logs, proxy stats.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from harness.mesh.base import Observation, ReceivedRequest

#: What an expectation needs from the mesh besides the caller's responses.
Need = Literal["echo", "app_log", "stats", "body"]

#: Category for a response that no app answered (Envoy replied locally: 404 NR, 503 UH, fault abort).
NO_VERSION = "none"
#: Category for a request that got no HTTP response at all (connection error, timeout in the client).
NO_RESPONSE = "error"
#: Category for a header that is not there.
ABSENT = "(absent)"


@dataclass(frozen=True)
class Sample:
    """One request as judged: the caller's observation and every copy any app logged under its
    request id (empty unless an expectation needs app logs; read after ``Mesh.drain``)."""

    obs: Observation
    copies: tuple[ReceivedRequest, ...] = ()


@dataclass(frozen=True)
class Classifier:
    """Maps a request to its category. ``detail`` is what a counterexample shows (the latency
    itself rather than "below 200ms"); by default the category."""

    @property
    def needs(self) -> frozenset[Need]:
        return frozenset()

    def category(self, sample: Sample) -> str:
        raise NotImplementedError

    def detail(self, sample: Sample) -> str:
        return self.category(sample)


@dataclass(frozen=True)
class Expectation:
    """A per-request property. Exactly one of ``every`` (all requests in that category),
    ``one_of`` (every request in one of these categories, and each category seen at least once)
    and ``fractions`` (a random split, judged statistically) is set. ``field`` is the expect key
    as written (``version``, ``headers.location``, ``latency``), for reports."""

    field: str
    classify: Classifier
    every: str | None = None
    fractions: Mapping[str, float] | None = None
    one_of: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.every, self.fractions, self.one_of)) != 1:
            raise ValueError("an Expectation needs exactly one of every, one_of and fractions")

    @property
    def is_fraction(self) -> bool:
        return self.fractions is not None

    @property
    def needs(self) -> frozenset[Need]:
        return self.classify.needs

    def category(self, sample: Sample) -> str:
        return self.classify.category(sample)

    def accepts(self, category: str) -> bool:
        """Whether a request in ``category`` keeps an every-response expectation (``every`` or ``one_of``)."""
        return category == self.every or (self.one_of is not None and category in self.one_of)

    @property
    def wanted(self) -> str:
        """What every response must have, as reports write it: ``v2``, or ``one of 200, 503``."""
        return f"one of {', '.join(self.one_of)}" if self.one_of is not None else self.every or ""

    def describe(self) -> str:
        if self.fractions is not None:
            return f"{self.field} " + ", ".join(f"{k}={v:g}" for k, v in self.fractions.items())
        if self.one_of is not None:
            return f"every {self.field} one of {', '.join(self.one_of)}, each at least once"
        return f"every {self.field} = {self.every}"


def answered(obs: Observation) -> bool:
    """Whether the request got an HTTP response at all (from an app or from Envoy)."""
    return obs.status != 0


def show_seconds(seconds: float) -> str:
    """``0.2`` -> ``200ms``, ``1.5`` -> ``1.5s``, ``0`` -> ``0s``: durations as a case author writes them."""
    if 0.0 < abs(seconds) < 1.0:
        return f"{seconds * 1000:.4g}ms"
    return f"{seconds:.4g}s"
