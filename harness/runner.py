"""Run cases against a mesh: deploy, apply, send batch by batch until every judge decides, revert.

This is the only place that interleaves traffic with judging; the judging itself is pure
(``verdict.py``) and the traffic is the mesh's business. Every loop is bounded: by the judges'
budgets, by a cap on batches, and by a wall-clock deadline per check.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from harness.case import Case, Check
from harness.errors import HarnessError, SyncTimeout
from harness.mesh.base import Mesh, Observation
from harness.settings import StatSettings
from harness.verdict import Judge, Verdict, make_judges, requests_needed, verdict

#: Responses stamped by an older config are re-sent; more stale responses than this per check is a mesh bug.
MAX_STALE = 10_000
#: Upper bound on batches per check (a sequential design has a dozen looks at most).
MAX_BATCHES = 200


@dataclass(frozen=True)
class CheckResult:
    case: str
    check: str
    file: str
    line: int
    outcome: str  # pass | fail | inconclusive | error
    verdict: Verdict | None
    requests: int
    stale: int
    seconds: float
    error: str | None = None


def run_case(
    mesh: Mesh,
    case: Case,
    settings: StatSettings,
    *,
    select: Callable[[Check], bool] = lambda _c: True,
    check_deadline_s: float = 300.0,
    clock: Callable[[], float] = time.monotonic,
) -> list[CheckResult]:
    """Run the selected checks of ``case``; config is applied once for the case and always reverted.

    A mesh error while applying marks every selected check as ``error``; a mesh error during one
    check marks that check only.
    """
    checks = [c for c in case.checks if select(c)]
    if not checks:
        return []
    started = clock()
    try:
        mesh.deploy(case.topology)
        token = mesh.apply(case.objects)
    except HarnessError as exc:
        return [_error(case, c, exc, clock() - started) for c in checks]
    try:
        return [run_check(mesh, case, c, settings, token.version, deadline_s=check_deadline_s, clock=clock) for c in checks]
    finally:
        mesh.revert(token)


def run_check(
    mesh: Mesh,
    case: Case,
    check: Check,
    settings: StatSettings,
    config_version: int,
    *,
    deadline_s: float = 300.0,
    clock: Callable[[], float] = time.monotonic,
) -> CheckResult:
    """Send batches until every judge decides; only responses served by ``config_version`` count.

    ``clock`` is the time source of the deadline (a parameter so that tests can move time).
    """
    started = clock()
    try:
        judges = make_judges(check.expectations, check.overrides.over(settings))
    except ValueError as exc:  # e.g. max_requests below what alpha and power need
        return _error(case, check, exc, 0.0)
    stale = 0
    try:
        for _ in range(MAX_BATCHES):
            count = requests_needed(judges)
            if count == 0:
                break
            remaining = deadline_s - (clock() - started)
            if remaining <= 0:
                raise SyncTimeout(
                    f"check {check.name!r}: no verdict within {deadline_s:g}s "
                    f"({_progress(judges, stale)}); raise the deadline or check that the mesh answers"
                )
            batch = mesh.send(replace(check.send, count=count, deadline_s=min(check.send.deadline_s, remaining)))
            fresh = [o for o in batch if _served_by(o, config_version)]
            stale += len(batch) - len(fresh)
            if stale > MAX_STALE:
                raise SyncTimeout(
                    f"check {check.name!r}: {stale} responses came from another config than version "
                    f"{config_version} (more than {MAX_STALE}); a proxy did not take the applied config"
                )
            _feed(judges, fresh)
        else:
            if requests_needed(judges):
                raise SyncTimeout(
                    f"check {check.name!r}: no verdict after {MAX_BATCHES} batches ({_progress(judges, stale)}); "
                    "the mesh keeps answering fewer requests than asked"
                )
    except HarnessError as exc:
        return _error(case, check, exc, clock() - started)
    result = verdict(judges)
    return CheckResult(
        case.name, check.name, case.file, check.line, result.outcome, result, result.requests, stale,
        clock() - started,
    )


def _progress(judges: Sequence[Judge], stale: int) -> str:
    counted = max((j.n for j in judges), default=0)
    return f"{counted} responses counted, {stale} stale"


def _served_by(obs: Observation, config_version: int) -> bool:
    """A response counts unless a route of another config version stamped it. Local replies that no
    route produced (404 NR) carry no stamp; they are counted, since traffic is sent only after every
    proxy ACKed ``config_version``."""
    return obs.config_version is None or obs.config_version == str(config_version)


def _feed(judges: Sequence[Judge], observations: Sequence[Observation]) -> None:
    for judge in judges:
        judge.add(observations)


def _error(case: Case, check: Check, exc: Exception, seconds: float) -> CheckResult:
    return CheckResult(case.name, check.name, case.file, check.line, "error", None, 0, 0, seconds, str(exc))
