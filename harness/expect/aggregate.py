"""Expectations about the check's traffic as a whole: ``stats``, ``same_instance``, ``instances``; and
``expect: none`` (``NoClaim``), traffic sent without a claim.

They are exact statements about what happened, judged once after the traffic (``same_instance``
also fails at its first counterexample): no randomness in the judgement. The *traffic* has to make
them certain, and that is the case author's part: a circuit breaker overflows only if enough
requests are in flight at once (``send: {count: 10, concurrency: 10}`` against a slow app), and
``instances: {at_least: 2}`` is certain under ROUND_ROBIN but under LEAST_REQUEST the picks are
not independent draws, so only presence claims ("at least 2 instances served") are made, never a
spread.

``stats`` reads the client sidecar's counters before the first request and after the last
(after ``Mesh.drain``), and judges the delta of the sum over every counter whose name is one of
the given names or ends with ``.<name>``. Several names joined by ``|`` are summed, since Envoy
splits some counts (a breaker overflow is ``upstream_rq_pending_overflow`` or
``upstream_rq_active_overflow`` depending on where the request waited).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from harness.expect.base import Need, Sample


@dataclass(frozen=True)
class StatsExpectation:
    """The summed delta of counters matching ``names`` lies in [at_least, at_most] (either may be None)."""

    names: tuple[str, ...]
    at_least: int | None = None
    at_most: int | None = None

    field = "stats"

    @property
    def needs(self) -> frozenset[Need]:
        return frozenset({"stats"})

    @property
    def key(self) -> str:
        return "|".join(self.names)

    def describe(self) -> str:
        return f"stats {self.key} {bounds_text(self.at_least, self.at_most)}"

    def matching(self, stats: Mapping[str, int]) -> dict[str, int]:
        """The counters this expectation sums: exact names, or names ending in ``.<name>``."""
        return {k: v for k, v in stats.items() if any(k == n or k.endswith("." + n) for n in self.names)}

    def holds(self, delta: int) -> bool:
        return (self.at_least is None or delta >= self.at_least) and (self.at_most is None or delta <= self.at_most)


@dataclass(frozen=True)
class SameInstanceExpectation:
    """Every response in the check came from one app instance (consistent hashing, session affinity)."""

    field = "same_instance"

    @property
    def needs(self) -> frozenset[Need]:
        return frozenset()

    def describe(self) -> str:
        return "every response from the same instance"


@dataclass(frozen=True)
class InstancesExpectation:
    """The number of distinct app instances that answered lies in [at_least, at_most] (either may
    be None), and no instance in ``exclude`` answered or received any request of the check.

    ``exclude`` reads the app logs as well as the answers: an ejected replica that a retry still
    reached, or that got a mirrored copy, did receive traffic even if another instance answered.
    """

    at_least: int | None = None
    at_most: int | None = None
    exclude: tuple[str, ...] = ()

    field = "instances"

    @property
    def needs(self) -> frozenset[Need]:
        return frozenset({"app_log"}) if self.exclude else frozenset()

    @property
    def counts_instances(self) -> bool:
        return self.at_least is not None or self.at_most is not None

    def describe(self) -> str:
        parts = [f"distinct instances {bounds_text(self.at_least, self.at_most)}"] if self.counts_instances else []
        if self.exclude:
            parts.append(f"none of {', '.join(self.exclude)} answered or received a request")
        return "; ".join(parts)

    def holds(self, count: int) -> bool:
        return (self.at_least is None or count >= self.at_least) and (self.at_most is None or count <= self.at_most)

    def reached_excluded(self, sample: Sample) -> str | None:
        """The excluded instance that ``sample`` reached and how (``reviews-v1-1 (answered)``), or None."""
        if sample.obs.instance in self.exclude:
            return f"{sample.obs.instance} (answered)"
        copy = next((c for c in sample.copies if c.instance in self.exclude), None)
        return None if copy is None else f"{copy.instance} (received)"


@dataclass(frozen=True)
class NoClaim:
    """``expect: none``: the check's requests are sent for their effect on the mesh (warm-up: a
    connection pool, an outlier detector's error count) and no claim is made about them. It
    stands in the check's expectations so that reports say so instead of showing nothing."""

    field = "expect"

    @property
    def needs(self) -> frozenset[Need]:
        return frozenset()

    def describe(self) -> str:
        return "no claim (expect: none): traffic sent for its effect only"


def bounds_text(at_least: int | None, at_most: int | None) -> str:
    """``= 3``, ``>= 1``, ``<= 0``, ``in [1, 5]``."""
    if at_least is not None and at_least == at_most:
        return f"= {at_least}"
    if at_least is not None and at_most is not None:
        return f"in [{at_least}, {at_most}]"
    if at_least is not None:
        return f">= {at_least}"
    return f"<= {at_most}"
