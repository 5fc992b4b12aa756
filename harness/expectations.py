"""The ``expect`` vocabulary: which property of each response is judged, and how.

Each key of ``expect`` names one property of an Observation (the same names the echo app and
Observation use: ``version``, ``status``). A single value means every response must have it; a
mapping of fractions means the property is a random split judged statistically.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from harness.mesh.base import Observation

if TYPE_CHECKING:
    from harness.case import ExpectModel

Field = Literal["version", "status"]

#: Category for a response that no app answered (Envoy replied locally: 404 NR, 503 UH, fault abort).
NO_VERSION = "none"
#: Category for a request that got no HTTP response at all (connection error, timeout in the client).
NO_RESPONSE = "error"


def _version(obs: Observation) -> str:
    """A request that got no response at all is not "Envoy answered": ``version: none`` must not pass on it."""
    if not obs.status:
        return NO_RESPONSE
    return obs.version or NO_VERSION


def _status(obs: Observation) -> str:
    return str(obs.status) if obs.status else NO_RESPONSE


CATEGORY: Mapping[Field, Callable[[Observation], str]] = {"version": _version, "status": _status}


@dataclass(frozen=True)
class Expectation:
    """One judged property. Exactly one of ``every`` (all responses) and ``fractions`` is set."""

    field: Field
    every: str | None = None
    fractions: Mapping[str, float] | None = None

    @property
    def is_fraction(self) -> bool:
        return self.fractions is not None

    def category(self, obs: Observation) -> str:
        return CATEGORY[self.field](obs)

    def describe(self) -> str:
        if self.fractions is not None:
            return f"{self.field} " + ", ".join(f"{k}={v:g}" for k, v in self.fractions.items())
        return f"every {self.field} = {self.every}"


def parse_expectations(model: ExpectModel) -> tuple[list[Expectation], list[tuple[str | None, str]]]:
    """Expectations from a parsed ``expect`` block, and (field, message) problems for the loader to place."""
    expectations: list[Expectation] = []
    problems: list[tuple[str | None, str]] = []
    given: dict[Field, Any] = {"version": model.version, "status": model.status}
    for name, value in given.items():
        if value is None:
            continue
        if isinstance(value, dict):
            fractions = {str(k): float(v) for k, v in value.items()}
            problem = _fraction_problem(fractions)
            if problem:
                problems.append((name, problem))
            else:
                expectations.append(Expectation(name, fractions=fractions))
        else:
            expectations.append(Expectation(name, every=str(value)))
    if not expectations and not problems:
        problems.append((None, "nothing to check; add version or status (e.g. version: v2, or version: {v1: 0.9, v2: 0.1})"))
    return expectations, problems


def _fraction_problem(fractions: Mapping[str, float]) -> str | None:
    if not fractions:
        return "expected at least one category with its fraction, e.g. {v1: 0.9, v2: 0.1}"
    bad = {k: v for k, v in fractions.items() if not (0.0 <= v <= 1.0) or math.isnan(v)}
    if bad:
        k, v = next(iter(bad.items()))
        return f"each fraction must be between 0 and 1 (got {k}: {v:g}); write 0.9 for 90%"
    total = sum(fractions.values())
    if abs(total - 1.0) > 1e-6:
        return f"fractions must add up to 1 (got {total:g}); list every category, e.g. {{v1: 0.9, v2: 0.1}}"
    return None
