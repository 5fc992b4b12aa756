"""The judged load runs of the integration tests get enough requests on a loaded machine.

A load run lasts a fixed time, so its split gets as many responses as the machine sends: on
2026-12-07 a run of ``load-canary.yaml`` at the default delta, 4 users for 5 s beside a soak, sent
2,528 responses where the fixed-n test needs 2,656, and was inconclusive. The judged runs now use
``load_runs.JUDGED``; this pins that the failed run's arithmetic fails and the new one holds with
room to spare.
"""

from __future__ import annotations

from harness.settings import StatSettings
from harness.stats.fractions import FractionDesign
from tests.integration.load_runs import JUDGED, LOADED_REQUESTS_PER_S

CANARY = {"v1": 0.9, "v2": 0.1}  # cases/load-canary.yaml
SENT_BY_THE_FAILED_RUN = 2528


def fixed_n(delta: float) -> int:
    return FractionDesign.plan(CANARY, delta=delta, max_looks=1).looks[-1]


def _option(name: str) -> str:
    return JUDGED[JUDGED.index(name) + 1]


def test_the_default_delta_needed_more_than_the_loaded_run_sent() -> None:
    assert fixed_n(StatSettings().delta) > SENT_BY_THE_FAILED_RUN


def test_a_judged_run_needs_a_third_of_what_a_loaded_machine_sends() -> None:
    """Even if Locust's start ate 2 of its 8 seconds, as it ate 1.1 to 1.4 of 5 in the loaded runs."""
    counted_s = float(_option("--duration").removesuffix("s")) - 2.0
    needed = fixed_n(float(_option("--delta")))
    assert needed * 3 <= LOADED_REQUESTS_PER_S * counted_s
    assert needed * 3 <= SENT_BY_THE_FAILED_RUN
