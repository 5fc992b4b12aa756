"""The ``load:`` block of a case, and the settings of a load run once CLI flags are laid over it.

::

    load:
      users: 8                  # Locust users (each sends back to back: a closed loop)
      spawn_rate: 8             # users started per second
      duration: 10s             # how long the load runs
      checks: [split follows the weights]   # which checks' traffic to send (default: every check)
      max_fail_ratio: 0.01      # gates: no response or HTTP status >= 400, as Locust counts failures
      p95: 250ms                #   95th and 99th percentile of latency over every request
      p99: 500ms
      min_rps: 100              #   requests per second over the run

Pure: a pydantic model (checked with the rest of the case, same messages) and frozen settings. It
lives beside the case, not in ``harness.locust``, so that loading a case never imports the Locust runner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from harness.errors import Issue
from harness.expect.schema import DurationText
from harness.yamlsource import Document, format_path

#: Bounds that keep every load run finite and the Locust process within one machine.
MAX_USERS = 1000
MAX_DURATION_S = 3600.0


class LoadModel(BaseModel):
    """The YAML schema of ``load:``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    users: Annotated[int, Field(ge=1, le=MAX_USERS)] | None = Field(None, description="Locust users (default 10).")
    spawn_rate: Annotated[float, Field(gt=0)] | None = Field(None, description="Users started per second (default: all at once).")
    duration: DurationText | None = Field(None, description='How long the load runs, e.g. "10s", "1m" (default 60s).')
    checks: tuple[str, ...] | None = Field(None, description="Names of the checks whose traffic to send (default: every check).")
    max_fail_ratio: Annotated[float, Field(ge=0, le=1)] | None = Field(
        None, description="Gate: at most this share of requests without a response or with status >= 400.")
    p95: DurationText | None = Field(None, description='Gate: 95th percentile latency below this, e.g. "250ms".')
    p99: DurationText | None = Field(None, description='Gate: 99th percentile latency below this, e.g. "500ms".')
    min_rps: Annotated[float, Field(gt=0)] | None = Field(None, description="Gate: at least this many requests per second.")


@dataclass(frozen=True)
class Thresholds:
    """Load gates, each off when None: thresholds on what the whole run measured (as locust-plugins'
    ``--check-*`` options), not statistical tests. ``p95_s``/``p99_s`` are upper bounds in seconds."""

    max_fail_ratio: float | None = None
    p95_s: float | None = None
    p99_s: float | None = None
    min_rps: float | None = None


@dataclass(frozen=True)
class LoadSpec:
    """How a case runs under load. ``checks`` empty means every check of the case."""

    users: int = 10
    spawn_rate: float | None = None
    duration_s: float = 60.0
    checks: tuple[str, ...] = ()
    gates: Thresholds = field(default_factory=Thresholds)

    @property
    def rate(self) -> float:
        """Users started per second (all at once unless given)."""
        return self.spawn_rate if self.spawn_rate is not None else float(self.users)

    def overridden(
        self, *, users: int | None = None, spawn_rate: float | None = None, duration_s: float | None = None,
        max_fail_ratio: float | None = None, p95_s: float | None = None, p99_s: float | None = None,
        min_rps: float | None = None,
    ) -> LoadSpec:
        """This spec with every value that is given (not None) replaced: command-line flags over the case."""
        g = self.gates
        gates = Thresholds(
            max_fail_ratio=g.max_fail_ratio if max_fail_ratio is None else max_fail_ratio,
            p95_s=g.p95_s if p95_s is None else p95_s,
            p99_s=g.p99_s if p99_s is None else p99_s,
            min_rps=g.min_rps if min_rps is None else min_rps,
        )
        return replace(
            self,
            users=self.users if users is None else users,
            spawn_rate=self.spawn_rate if spawn_rate is None else spawn_rate,
            duration_s=self.duration_s if duration_s is None else duration_s,
            gates=gates,
        )


def load_spec(model: LoadModel, doc: Document, ref: str | None, check_names: Sequence[str], issues: list[Issue]) -> LoadSpec:
    """The case's ``load:`` block as settings; problems (unknown check names, a duration out of
    range) go to ``issues`` with their line and path."""

    def problem(message: str, *at: str | int) -> None:
        path = ("load", *at)
        issues.append(Issue(message, doc.file, doc.line_of(path), ref, format_path(path)))

    base = LoadSpec()
    duration = base.duration_s if model.duration is None else model.duration
    if not 0 < duration <= MAX_DURATION_S:
        problem(f"must be more than 0s and at most {MAX_DURATION_S:g}s (got {duration:g}s)", "duration")
    for i, name in enumerate(model.checks or ()):
        if name not in check_names:
            problem(f"no check named {name!r} in this case (checks: {', '.join(map(repr, check_names))})", "checks", i)
    return LoadSpec(
        users=model.users or base.users, spawn_rate=model.spawn_rate, duration_s=duration, checks=model.checks or (),
        gates=Thresholds(max_fail_ratio=model.max_fail_ratio, p95_s=model.p95, p99_s=model.p99, min_rps=model.min_rps),
    )
