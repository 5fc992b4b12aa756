"""Requests per fractional verdict at the default error rates: sequential design vs fixed n.

For each split this prints the planned looks, the budget (most requests a check can use), the
expected number of requests when the mesh is correct, the budget of the fixed-n test with the
same guarantees (one look), the probability that a correct mesh fails or is inconclusive, and
the largest P(pass) when one category is off by exactly its delta (either direction, and a
leak of delta into "other"). Exact numbers come from the dynamic program in
harness/stats/operating.py; where more than two categories are involved it gives upper bounds
("<=") and the expected n is also simulated with a fixed seed ("~").

Run from the repository root:  python bench/stats_requests_per_verdict.py
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.stats import OTHER, FractionDesign  # noqa: E402

CASES: tuple[tuple[str, Mapping[str, float], float | None], ...] = (
    ("50/50", {"v1": 0.5, "v2": 0.5}, None),
    ("90/10", {"v1": 0.9, "v2": 0.1}, None),
    ("80/20", {"v1": 0.8, "v2": 0.2}, None),
    ("1/3-1/3-1/3", {"v1": 1, "v2": 1, "v3": 1}, None),
    ("99/1 rel 0.5", {"v1": 0.99, "v2": 0.01}, 0.5),
)
SIMULATED_RUNS = 20_000
SEED = 20240601


def deviations(design: FractionDesign) -> list[dict[str, float]]:
    """True distributions with one category moved by exactly its delta (mass from/to the largest other)."""
    expected = dict(design.expected)
    out = []
    for name, e in expected.items():
        donor = max((n for n in expected if n != name), key=lambda n: expected[n])
        for sign in (1.0, -1.0):
            shifted = e + sign * design.deltas[name]
            moved = expected[donor] - sign * design.deltas[name]
            if 0.0 <= shifted <= 1.0 and 0.0 <= moved <= 1.0:
                out.append({**expected, name: shifted, donor: moved})
    return out


def row(label: str, expected: Mapping[str, float], relative: float | None) -> str:
    started = time.perf_counter()
    design = FractionDesign.plan(expected, relative=relative)
    planned = time.perf_counter() - started
    fixed = FractionDesign.plan(expected, relative=relative, max_looks=1)
    null = design.operating(expected)
    mark = "" if null.exact else "<="
    expected_n = f"{mark}{null.expected_n:,.0f}"
    if not null.exact:
        simulated = design.simulate(expected, runs=SIMULATED_RUNS, seed=SEED)
        expected_n += f" ~{simulated.mean_n:,.0f}"
    alternatives = [design.operating(true) for true in deviations(design)]
    worst_pass = max(a.p_pass for a in alternatives)
    pass_mark = "" if all(a.exact for a in alternatives) else "<="
    looks = ",".join(str(n) for n in design.looks)
    return (
        f"{label:<14} {design.budget:>7,} {expected_n:>16} {fixed.budget:>7,} "
        f"{null.expected_n / fixed.budget:>6.2f} {mark}{null.p_fail + null.p_inconclusive:>9.2e} "
        f"{pass_mark}{worst_pass:>9.2e} {planned * 1000:>6.0f}  {looks}"
    )


def main() -> None:
    print("alpha=1e-06 power=0.999 delta=0.05 (99/1: delta_i = 0.5 * expected_i; 'other' gets the smallest delta)")
    print(
        f"{'split':<14} {'budget':>7} {'E[n] correct':>16} {'fixed n':>7} {'E/fix':>6} "
        f"{'P(!pass|ok)':>11} {'P(pass|off)':>11} {'ms':>6}  looks"
    )
    for label, expected, relative in CASES:
        print(row(label, expected, relative))
    print(f"'other' is the implicit category {OTHER!r}; ~ = mean of {SIMULATED_RUNS:,} simulated checks, seed {SEED}")


if __name__ == "__main__":
    main()
