"""Requests per fractional verdict at the default error rates: sequential design vs fixed n vs the peers' rules.

For each split this prints the planned looks, the budget (most requests a check can use), the
expected number of requests when the mesh is correct and its 95th percentile (the look by which 95%
of checks on a correct mesh have stopped), the budget of the fixed-n test with the
same guarantees (one look), the probability that a correct mesh fails or is inconclusive, and
the largest P(pass) when one category is off by exactly its delta (either direction, and a
leak of delta into "other"). Exact numbers come from the dynamic program in
harness/stats/operating.py; where more than two categories are involved it gives upper bounds
("<=") and the expected n is also simulated with a fixed seed ("~").

A second table puts the peers' split rules (references: peers.md sections 2.B, 3.6, 3.7) on the
same true splits, by simulation with a fixed seed: Istio's ``routing.go`` "shifting" check (100
calls, every count within +/-10 of its expectation, inside ``retry`` with converge 3: it passes
once three attempts in a row pass; its 30 s timeout is modelled as at most ``ISTIO_ATTEMPTS``
attempts) and Gateway API's ``httproute-weight`` (500 requests, every fraction within +/-0.05,
passes when any of up to 10 attempts does). For each it gives the false-failure rate (a correct
mesh never passes; computed from the per-attempt rate, attempts independent, since it lies far
below what the simulation resolves), the chance one attempt fails on a correct mesh (the flake the retry loop
hides), the worst P(pass) at a deviation of exactly delta (1 - power) and the mean requests a
correct mesh costs. These rules count every category including "other" (expected 0).

Run from the repository root:  python bench/stats_requests_per_verdict.py
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.stats import OTHER, FractionDesign  # noqa: E402

CASES: tuple[tuple[str, Mapping[str, float], float | None], ...] = (
    ("50/50", {"v1": 0.5, "v2": 0.5}, None),
    ("90/10", {"v1": 0.9, "v2": 0.1}, None),
    ("80/20", {"v1": 0.8, "v2": 0.2}, None),
    ("1/3-1/3-1/3", {"v1": 1, "v2": 1, "v3": 1}, None),
    ("99/1 rel 0.5", {"v1": 0.99, "v2": 0.01}, 0.5),
)
#: The quantile of the requests a check uses that is reported next to the mean.
P95 = 0.95
SIMULATED_RUNS = 20_000
SEED = 20240601
#: Istio's retry runs until 30 s pass; an attempt of 100 calls in a cluster takes about a second.
ISTIO_ATTEMPTS = 30


@dataclass(frozen=True)
class PeerRule:
    """A fixed-tolerance split check inside a retry loop, as a peer suite writes it."""

    name: str
    n: int  # requests per attempt
    tolerance: float  # largest |observed fraction - expected| an attempt accepts, per category
    attempts: int  # most attempts before the check gives up
    consecutive: int  # attempts in a row that must pass


ISTIO = PeerRule("Istio shifting (100 calls +/-10, converge 3)", 100, 0.10, ISTIO_ATTEMPTS, 3)
GATEWAY_API = PeerRule("Gateway API weight (500 req +/-0.05, <=10 tries)", 500, 0.05, 10, 1)
PEERS = (ISTIO, GATEWAY_API)


@dataclass(frozen=True)
class PeerResult:
    """Simulated operating characteristics of one peer rule at one split."""

    rule: PeerRule
    p_false_failure: float  # correct mesh, check never passes (from p_attempt_fails, exact given it)
    p_attempt_fails: float  # correct mesh, one attempt fails (what the retry loop hides)
    worst_p_pass_off: float  # largest P(pass) over the deviations of exactly delta
    mean_n_correct: float  # mean requests the check sends on a correct mesh


@dataclass(frozen=True)
class SplitRow:
    """Ours at one split: the sequential design next to the fixed-n test, and the peers at the same splits."""

    label: str
    looks: tuple[int, ...]
    budget: int
    expected_n: float  # exact or an upper bound (see n_exact)
    p95_n: int  # 95th percentile of the requests used on a correct mesh; exact or an upper bound (see n_exact)
    n_exact: bool  # expected_n and p95_n are exact (one binomial describes the correct mesh)
    simulated_n: float | None  # when not exact
    fixed_n: int
    exact: bool
    p_not_pass_correct: float
    worst_p_pass_off: float
    plan_ms: float
    peers: tuple[PeerResult, ...]


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


def simulate_peer(rule: PeerRule, expected: Mapping[str, float], true: Mapping[str, float], *, runs: int,
                  seed: int) -> tuple[float, float, float]:
    """(P(pass), mean requests, P(one attempt fails)) of ``rule`` checking ``expected`` when traffic follows ``true``."""
    names = list(expected)
    probs = np.array([true[k] for k in names], dtype=np.float64)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(rule.n, probs / probs.sum(), size=(runs, rule.attempts))
    want = np.array([expected[k] for k in names]) * rule.n
    # a hair of slack so that "within 10 counts" holds at exactly 10 despite float fractions
    ok: npt.NDArray[np.bool_] = (np.abs(counts - want) <= rule.tolerance * rule.n + 1e-9).all(axis=2)
    streak = np.zeros(runs, dtype=np.int64)
    done_at = np.full(runs, rule.attempts, dtype=np.int64)  # attempts used
    passed = np.zeros(runs, dtype=bool)
    for attempt in range(rule.attempts):
        streak = np.where(ok[:, attempt], streak + 1, 0)
        newly = ~passed & (streak >= rule.consecutive)
        done_at[newly] = attempt + 1
        passed |= newly
    return float(passed.mean()), float(done_at.mean() * rule.n), float(1.0 - ok.mean())


def never_passes(rule: PeerRule, q: float) -> float:
    """P(no run of ``rule.consecutive`` passing attempts within ``rule.attempts``), each attempt passing
    independently with probability ``q``: exact, so rates far below the simulation's resolution show."""
    streaks = [1.0] + [0.0] * (rule.consecutive - 1)  # P(current run of passes = i, not yet passed)
    for _ in range(rule.attempts):
        stepped = [0.0] * rule.consecutive
        stepped[0] = sum(streaks) * (1.0 - q)
        for i in range(1, rule.consecutive):
            stepped[i] = streaks[i - 1] * q
        streaks = stepped
    return sum(streaks)


def peer_results(design: FractionDesign, *, runs: int = SIMULATED_RUNS, seed: int = SEED) -> tuple[PeerResult, ...]:
    expected = dict(design.expected)
    out = []
    for rule in PEERS:
        _, mean_n, attempt_fails = simulate_peer(rule, expected, expected, runs=runs, seed=seed)
        worst = max(simulate_peer(rule, expected, true, runs=runs, seed=seed)[0] for true in deviations(design))
        out.append(PeerResult(rule, never_passes(rule, 1.0 - attempt_fails), attempt_fails, worst, mean_n))
    return tuple(out)


def measure(label: str, expected: Mapping[str, float], relative: float | None) -> SplitRow:
    started = time.perf_counter()
    design = FractionDesign.plan(expected, relative=relative)
    planned = time.perf_counter() - started
    fixed = FractionDesign.plan(expected, relative=relative, max_looks=1)
    null = design.operating(expected)
    simulated = None if null.exact else design.simulate(expected, runs=SIMULATED_RUNS, seed=SEED).mean_n
    alternatives = [design.operating(true) for true in deviations(design)]
    return SplitRow(
        label=label, looks=design.looks, budget=design.budget, expected_n=null.expected_n,
        p95_n=null.quantile_n(P95), n_exact=null.exact, simulated_n=simulated,
        fixed_n=fixed.budget, exact=null.exact and all(a.exact for a in alternatives),
        p_not_pass_correct=null.p_fail + null.p_inconclusive, worst_p_pass_off=max(a.p_pass for a in alternatives),
        plan_ms=planned * 1000, peers=peer_results(design),
    )


def measure_all() -> list[SplitRow]:
    """Every split of ``CASES``; seconds of CPU, no I/O."""
    return [measure(label, expected, relative) for label, expected, relative in CASES]


def rate(p: float, runs: int = SIMULATED_RUNS) -> str:
    """A simulated rate; zero events is shown as the resolution of the simulation."""
    return f"<{1 / runs:.0e}" if p == 0.0 else f"{p:.2e}"


def main() -> None:
    rows = measure_all()
    print("alpha=1e-06 power=0.999 delta=0.05 (99/1: delta_i = 0.5 * expected_i; 'other' gets the smallest delta)")
    print(
        f"{'split':<14} {'budget':>7} {'E[n] correct':>16} {'p95 n':>7} {'fixed n':>7} {'E/fix':>6} "
        f"{'P(!pass|ok)':>11} {'P(pass|off)':>11} {'ms':>6}  looks"
    )
    for r in rows:
        mark = "" if r.exact else "<="
        n_mark = "" if r.n_exact else "<="
        expected_n = f"{n_mark}{r.expected_n:,.0f}" + ("" if r.simulated_n is None else f" ~{r.simulated_n:,.0f}")
        print(
            f"{r.label:<14} {r.budget:>7,} {expected_n:>16} {n_mark}{r.p95_n:>5,} {r.fixed_n:>7,} "
            f"{r.expected_n / r.fixed_n:>6.2f} "
            f"{mark}{r.p_not_pass_correct:>9.2e} {mark}{r.worst_p_pass_off:>9.2e} {r.plan_ms:>6.0f}  "
            + ",".join(str(n) for n in r.looks)
        )
    print(f"'other' is the implicit category {OTHER!r}; ~ = mean of {SIMULATED_RUNS:,} simulated checks, seed {SEED}")
    print(f"\npeers' rules at the same true splits ({SIMULATED_RUNS:,} simulated checks each, seed {SEED}; "
          f"Istio's 30 s retry modelled as {ISTIO_ATTEMPTS} attempts)")
    print(f"{'split':<14} {'rule':<50} {'P(fail|ok)':>11} {'1 try fails':>11} {'P(pass|off)':>11} {'E[n] ok':>8}")
    for r in rows:
        for p in r.peers:
            print(f"{r.label:<14} {p.rule.name:<50} {rate(p.p_false_failure):>11} {rate(p.p_attempt_fails):>11} "
                  f"{rate(p.worst_p_pass_off):>11} {p.mean_n_correct:>8,.0f}")


if __name__ == "__main__":
    main()
