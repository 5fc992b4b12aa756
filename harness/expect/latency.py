"""``latency``: how long each request took as the caller measured it (send to last byte).

Three forms, each its own expectation:

* ``{at_least: 200ms}`` and/or ``{below: 2s}``: every request. Use a bound only where it is
  certain. A fault delay is a lower bound that holds on any machine (to within a timer tick, see
  below); an upper bound ("a 504 comes before 1.5s") holds only if the machine is not so loaded that
  scheduling adds the slack, so keep upper bounds generous (several times the expected time) or use
  a quantile instead.
* ``timers: 3`` beside a lower bound says that the bound is the sum of that many Envoy timers (three
  per-try timeouts); see the timer tolerance below.
* ``{fraction_at_least: {bound: 200ms, expected: 0.5}}``: the share of requests taking at least
  ``bound`` is a random split (a 50% fault delay), judged like any fraction.
* ``{p99: {below: 1s}}`` or ``{p50: {at_least: 200ms}}``: a latency quantile against a bound,
  distribution-free (``harness.stats.QuantileDesign``).

A request that got no response at all is in category ``error`` (it neither meets nor misses a bound).

The timer tolerance. Envoy's timers (a fault delay, a route or per-try timeout) run on libevent's
cached reading of the kernel's coarse monotonic clock, which lags real time by up to one clock tick;
a timer armed from a lagging reading ends up to one tick early (a 500ms delay measured at 499.9ms, as
seen here; Envoy with ``EVENT_PRECISE_TIMER=1`` does not do this, Istio's sidecars do). The reading is
also cached once per event-loop iteration, and a worker arms the timer later in that iteration, so a
timer may end earlier still by what the iteration took until then (``EVENT_LOOP_SLACK_S``). So every
lower bound (``at_least``, ``fraction_at_least``'s bound, a quantile's ``at_least``) is met by a
request that took at least the bound less ``timers`` times (a tick of the mesh's timer clock,
``MeshInfo.timer_tick_s``, plus that slack). ``with_timer_tick`` fills the tick in when a check meets
its mesh; the label of the bound says so, so every verdict states the tolerance it used. Upper bounds get none: a
timer that ends early cannot make a request slower.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.expect.base import (
    NO_RESPONSE,
    Classifier,
    Expectation,
    Need,
    Sample,
    answered,
    show_seconds,
)

EVENT_LOOP_SLACK_S = 0.002
"""How much later in its event-loop iteration than its cached clock reading an Envoy worker may arm a
timer: an empirical margin, since an iteration takes longer the busier the machine. Measured on a loaded
2-core machine with a 4ms tick, a 20ms fault delay at concurrency 64: 4.04ms early (one request in about
50,000, the whole suite's soak beside a CI run, load 2 to 3; 24,000 more there ended at most 3.0ms
early), then 5.03ms early (one in 3,000, a CI run beside a soak and two more runs, load 5 to 9). 1ms was
the slack until that second one."""


def timer_tolerance_s(timers: int, tick_s: float) -> float:
    """How much earlier than a lower bound made of ``timers`` Envoy timers a request may end; 0 while the
    tick is unknown (a scripted mesh has no timers)."""
    return timers * (tick_s + EVENT_LOOP_SLACK_S) if tick_s > 0.0 else 0.0


@dataclass(frozen=True)
class LatencyRange(Classifier):
    """``at_least - tolerance <= latency < below``; either bound may be absent. ``timers`` and
    ``tick_s`` make the lower bound's timer tolerance (module docstring); ``tick_s`` is 0 until the
    check meets its mesh."""

    at_least: float | None = None
    below: float | None = None
    timers: int = 1
    tick_s: float = 0.0

    @property
    def tolerance_s(self) -> float:
        """How much earlier than ``at_least`` a request may end and still meet it."""
        return timer_tolerance_s(self.timers, self.tick_s) if self.at_least is not None else 0.0

    @property
    def label(self) -> str:
        """The category of a request inside the range: ``at least 200ms``, ``below 2s``, ``200ms to 2s``,
        with the timer tolerance once known: ``at least 200ms (less 1 timer tick of 4ms + 2ms event loop)``."""
        if self.at_least is not None and self.below is not None:
            text = f"{show_seconds(self.at_least)} to {show_seconds(self.below)}"
        elif self.at_least is not None:
            text = f"at least {show_seconds(self.at_least)}"
        else:
            return f"below {show_seconds(self.below or 0.0)}"
        return text + timer_tolerance_text(self.timers, self.tick_s)

    def category(self, sample: Sample) -> str:
        if not answered(sample.obs):
            return NO_RESPONSE
        latency = sample.obs.latency_s
        if self.at_least is not None and latency < self.at_least - self.tolerance_s:
            return f"below {show_seconds(self.at_least)}"
        if self.below is not None and latency >= self.below:
            return f"{show_seconds(self.below)} or more"
        return self.label

    def detail(self, sample: Sample) -> str:
        if not answered(sample.obs):
            return NO_RESPONSE
        return f"{self.category(sample)} ({show_seconds(sample.obs.latency_s)})"


def timer_tolerance_text(timers: int, tick_s: float) -> str:
    """`` (less 1 timer tick of 4ms + 2ms event loop)``: how a lower bound states its tolerance (``x 3`` for
    three timers); empty before the tick is known."""
    if tick_s <= 0.0:
        return ""
    each = f"timer tick of {show_seconds(tick_s)} + {show_seconds(EVENT_LOOP_SLACK_S)} event loop"
    return f" (less 1 {each})" if timers == 1 else f" (less {timers} x ({each}))"


@dataclass(frozen=True)
class QuantileExpectation:
    """The ``q``-quantile of latency is below ``bound`` (or at least ``bound`` with ``at_least``)."""

    field: str
    q: float
    bound: float
    at_least: bool = False
    timers: int = 1
    tick_s: float = 0.0

    @property
    def needs(self) -> frozenset[Need]:
        return frozenset()

    @property
    def judged_bound(self) -> float:
        """The bound the quantile is judged against: a lower bound less its timer tolerance."""
        return self.bound - timer_tolerance_s(self.timers, self.tick_s) if self.at_least else self.bound

    def describe(self) -> str:
        if self.at_least:
            return f"{self.field} at least {show_seconds(self.bound)}{timer_tolerance_text(self.timers, self.tick_s)}"
        return f"{self.field} below {show_seconds(self.bound)}"


def latency_range(at_least: float | None = None, below: float | None = None, *, timers: int = 1, tick_s: float = 0.0) -> Expectation:
    """Every request took at least ``at_least`` and less than ``below`` seconds (either may be None)."""
    classify = LatencyRange(at_least, below, timers, tick_s)
    return Expectation("latency", classify, every=classify.label)


def latency_split(bound: float, expected: float, *, timers: int = 1, tick_s: float = 0.0) -> Expectation:
    """A share ``expected`` of requests took at least ``bound`` seconds, the rest less."""
    above = LatencyRange(at_least=bound, timers=timers, tick_s=tick_s)
    below = LatencyRange(below=bound)
    return Expectation("latency.fraction_at_least", above, fractions={above.label: expected, below.label: 1.0 - expected})


def latency_quantile(name: str, q: float, *, below: float | None = None, at_least: float | None = None,
                     timers: int = 1) -> QuantileExpectation:
    """``latency_quantile("p99", 0.99, below=1.0)``: the 99th percentile is below 1s."""
    if (below is None) == (at_least is None):
        raise ValueError("give exactly one of below and at_least")
    bound = below if below is not None else at_least
    assert bound is not None
    return QuantileExpectation(f"latency.{name}", q, bound, at_least=at_least is not None, timers=timers)
