"""Deterministic expectations ("all traffic to v2", "every status 404").

A correct mesh never produces a counterexample, so the check fails on the first one and has no
false failures at all. What needs planning is how many requests to send so that a mesh that
leaks a fraction ``leak`` or more of its traffic shows at least one counterexample with
probability ``power``: P(no counterexample in n) = (1 - leak)^n <= 1 - power, so
n = ceil(log(1 - power) / log(1 - leak)) (135 for a 5% leak at power 0.999).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.stats import intervals
from harness.stats.rule import Outcome

DEFAULT_LEAK = 0.05
DEFAULT_POWER = 0.999


@dataclass(frozen=True)
class AllDecision:
    """Verdict of a deterministic check so far.

    ``leak_upper`` is the one-sided upper confidence bound (level ``level``) on the leak rate,
    from the mismatches seen in ``n`` requests.
    """

    outcome: Outcome
    n: int
    mismatches: int
    leak_upper: float
    level: float
    rule: str


@dataclass(frozen=True)
class AllDesign:
    """Plan for a deterministic expectation: send ``n`` requests, any mismatch fails."""

    leak: float
    power: float
    n: int

    @classmethod
    def plan(cls, *, leak: float = DEFAULT_LEAK, power: float = DEFAULT_POWER) -> AllDesign:
        """Fewest requests that show a leak of at least ``leak`` with probability ``power``."""
        for name, value in (("leak", leak), ("power", power)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
                raise ValueError(f"{name} must be a number in (0, 1) (got {value!r})")
        if power <= 0.5:
            raise ValueError(f"power must be above 0.5 (got {power!r})")
        n = math.ceil(math.log1p(-power) / math.log1p(-leak))
        return cls(leak=leak, power=power, n=max(1, n))

    def decide(self, n: int, mismatches: int) -> AllDecision:
        """FAIL on any mismatch, PASS once ``self.n`` requests all matched, CONTINUE before that."""
        if n < 0 or not 0 <= mismatches <= n:
            raise ValueError(f"need 0 <= mismatches <= n (got n={n}, mismatches={mismatches})")
        tail = 1.0 - self.power
        upper = intervals.upper(mismatches, n, tail) if n else 1.0
        if mismatches:
            outcome = Outcome.FAIL
            rule = f"fail: {mismatches} of {n} requests did not match; one counterexample is enough"
        elif n >= self.n:
            outcome = Outcome.PASS
            rule = (
                f"pass: all {n} requests matched; a leak of {self.leak:g} or more would have shown "
                f"a counterexample with probability {self.power:g}"
            )
        else:
            outcome = Outcome.CONTINUE
            rule = f"continue: {n} of {self.n} requests matched so far"
        return AllDecision(outcome, n, mismatches, upper, 1.0 - tail, rule)
