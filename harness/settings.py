"""Statistical settings: suite-wide defaults (CLI/pytest options) and per-check overrides.

A check's effective settings are its own overrides laid over the run's defaults; nothing else
decides alpha, delta or power, so a report can always say which numbers judged a check.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class StatSettings:
    """What every fractional and every-response check promises.

    ``alpha``: chance that a correctly configured mesh gets a failing or inconclusive verdict.
    ``delta``: tolerance on each fraction (absolute), or ``relative_delta`` as a share of each
    expected fraction. ``power``: chance that a deviation of ``delta`` is caught. ``leak``: the
    smallest share of exceptions an "every response" check must catch with ``power``.
    ``max_requests``: a cap on any one check's traffic.
    """

    alpha: float = 1e-6
    delta: float = 0.05
    relative_delta: float | None = None
    power: float = 0.999
    leak: float = 0.05
    max_requests: int | None = None


@dataclass(frozen=True)
class StatOverrides:
    """Per-check settings; None keeps the run's default."""

    alpha: float | None = None
    delta: float | None = None
    relative_delta: float | None = None
    power: float | None = None
    max_requests: int | None = None
    leak: float | None = None

    def over(self, base: StatSettings) -> StatSettings:
        """``base`` with every field this check sets replaced; a check's delta also clears a default relative_delta."""
        changes = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
        if self.delta is not None and self.relative_delta is None:
            changes["relative_delta"] = None
        return replace(base, **changes)
