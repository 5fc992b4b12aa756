"""What a long run reports while it runs: small events handed to an observer.

A local run takes tens of seconds, a kind run minutes, an istiod build several; a user needs to see
what is happening. The runner, the meshes and the istiod build say it through this seam without
knowing who listens: the CLI draws the events (``harness.report.progress``), tests record them, and
the default observer ignores them. Nothing here does I/O; ``step`` only reads a clock.

The events, in the order a run emits them: ``StepStarted``/``StepDone`` around each long step (the
mesh's start; on kind: cluster create, Istio install, image build and load, rollout; the istiod
build's resolve, download, patch, compile), ``CaseApplied`` once a case's config is on every proxy
(or could not be put there), ``CheckStarted`` and ``CheckJudged`` around each check.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class StepStarted:
    """A long step began; ``detail`` says what it does (a command line, what is awaited)."""

    name: str
    detail: str = ""


@dataclass(frozen=True)
class StepDone:
    """A long step ended after ``seconds``; ``ok`` is False when it raised."""

    name: str
    seconds: float
    ok: bool = True


@dataclass(frozen=True)
class CaseApplied:
    """A case's deploy + apply finished after ``seconds``; ``error`` says why it could not run."""

    case: str
    seconds: float
    error: str | None = None


@dataclass(frozen=True)
class CheckStarted:
    """A check's traffic is about to start (after its ``wait``, if any)."""

    case: str
    check: str


@dataclass(frozen=True)
class CheckJudged:
    """One check's verdict: ``outcome`` is pass | fail | inconclusive | error, ``requests`` the responses judged."""

    case: str
    check: str
    outcome: str
    requests: int
    seconds: float


Event = StepStarted | StepDone | CaseApplied | CheckStarted | CheckJudged
Observer = Callable[[Event], None]
"""Called synchronously, on the thread doing the work, with each event; must not raise."""


def ignore(_event: Event) -> None:
    """The observer when nobody listens (a library call, pytest)."""


@contextmanager
def step(observer: Observer, name: str, detail: str = "", *,
         clock: Callable[[], float] = time.monotonic) -> Iterator[None]:
    """Report ``name`` as started, then as done with its elapsed time (``ok=False`` if the body raised)."""
    observer(StepStarted(name, detail))
    started = clock()
    try:
        yield
    except BaseException:
        observer(StepDone(name, clock() - started, ok=False))
        raise
    observer(StepDone(name, clock() - started))


class Steps:
    """Consecutive steps announced one after the other (``steps(name, detail)``), each ended by the next or by
    ``close``: for code that is a sequence of phases rather than nested blocks (the istiod build)."""

    def __init__(self, observer: Observer, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._observer = observer
        self._clock = clock
        self._current: tuple[str, float] | None = None

    def __call__(self, name: str, detail: str = "") -> None:
        self.close()
        self._observer(StepStarted(name, detail))
        self._current = (name, self._clock())

    def close(self, *, ok: bool = True) -> None:
        """End the current step, if any."""
        if self._current is not None:
            name, started = self._current
            self._current = None
            self._observer(StepDone(name, self._clock() - started, ok=ok))
