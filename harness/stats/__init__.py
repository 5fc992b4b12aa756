"""Statistics for traffic checks: sequential tests with stated error rates (pure, no I/O).

Public API (re-exported here; the modules behind it are private details):

* ``FractionDesign.plan(expected, delta=..., alpha=..., power=...)`` then ``design.decide(counts)``
  at each of ``design.looks``: a split such as {v1: 0.9, v2: 0.1} is shown within +/- delta.
* ``AllDesign.plan(leak=..., power=...)`` then ``design.decide(n, mismatches)``: a deterministic
  expectation ("every status 404"), failing on the first counterexample.
* ``QuantileDesign.plan(q, ...)`` then ``design.decide(values, bound)``: a latency quantile is below
  (or above) a bound, distribution-free.
* ``operating_characteristics(design, true)``: exact P(pass), P(fail), P(inconclusive).
"""

from harness.stats.deterministic import AllDecision, AllDesign
from harness.stats.fractions import (
    OTHER,
    CategoryEstimate,
    FractionDecision,
    FractionDesign,
    operating_characteristics,
)
from harness.stats.operating import Operating
from harness.stats.quantile import QuantileDecision, QuantileDesign
from harness.stats.rule import Outcome
from harness.stats.simulate import Simulated

__all__ = [
    "AllDecision",
    "AllDesign",
    "CategoryEstimate",
    "FractionDecision",
    "FractionDesign",
    "OTHER",
    "Operating",
    "Outcome",
    "QuantileDecision",
    "QuantileDesign",
    "Simulated",
    "operating_characteristics",
]
