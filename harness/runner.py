"""Run cases against a mesh: deploy, apply, send batch by batch until every judge decides, revert.

This is the only place that interleaves traffic with judging; the judging itself is pure
(``verdict.py``) and the traffic is the mesh's business. Every loop is bounded: by the judges'
budgets, by a cap on batches, and by a wall-clock deadline per check.

What a check's expectations need decides what is asked of the mesh besides responses: echoes
(``upstream``), the response headers ``headers`` reads and the bodies ``body`` reads are requested
on each send (nothing else of a body is kept); app logs
(``attempts``, ``mirror``, ``received``) are read after each batch once ``Mesh.drain`` says nothing
is in flight (mirrored copies land after the caller has its response) and joined to the batch by
request id; proxy stats (``stats``) are read before the first request and after the last, drained.

A check's ``wait`` is the one sleep here, and it is policy time, not a sync wait: an outlier
ejection lasts ``baseEjectionTime``, so a check that shows the host coming back must send only
after that much time has passed since the previous check. Config never needs it (``Mesh.apply``
returns once every proxy ACKed); the case loader bounds it at ``MAX_WAIT_S``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import replace
from urllib.parse import urlsplit

from harness.applied import applied
from harness.case import Case, Check
from harness.errors import HarnessError, MeshError, SyncTimeout
from harness.expect import Sample, captured_headers, needs_of, with_timer_tick
from harness.expect.response import BODY_BYTES
from harness.mesh.base import Mesh, Observation, ReceivedRequest, SendSpec
from harness.mesh.forensics import LOG_LINES, Forensics, Inspectable, gather
from harness.progress import CaseApplied, CheckJudged, CheckStarted, Observer, ignore
from harness.result import CheckResult, TrafficTally
from harness.settings import StatSettings
from harness.topology import Topology
from harness.verdict import (
    Judge,
    make_judges,
    requests_needed,
    settle,
    verdict,
)

#: Responses stamped by an older config are re-sent; more stale responses than this per check is a mesh bug.
MAX_STALE = 10_000
#: Upper bound on batches per check (a sequential design has a dozen looks at most).
MAX_BATCHES = 200
#: Longest wait for in-flight requests (mirrored copies, delayed faults) before reading app logs or stats.
DRAIN_TIMEOUT_S = 60.0
#: App logs are read from just before a batch was sent, less this much, should the wall clock step back.
CLOCK_SLACK_S = 1.0


def run_case(
    mesh: Mesh,
    case: Case,
    settings: StatSettings,
    *,
    select: Callable[[Check], bool] = lambda _c: True,
    check_deadline_s: float = 300.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    observer: Observer = ignore,
) -> list[CheckResult]:
    """Run the selected checks of ``case``; config is applied once for the case and always reverted.

    A mesh error while applying marks every selected check as ``error``; a mesh error during one
    check marks that check only. ``observer`` is told when the case is applied and as each check is judged.
    """
    checks = [c for c in case.checks if select(c)]
    if not checks:
        return []
    started = clock()
    config = ExitStack()  # entered here and left after the checks: an apply error is not a check's error
    try:
        token = config.enter_context(applied(mesh, case))
    except HarnessError as exc:
        observer(CaseApplied(case.name, clock() - started, str(exc)))
        failed = [_error(case, c, exc, clock() - started) for c in checks]
        for result in failed:
            _tell(observer, result)
        return failed
    applied_s = clock() - started
    observer(CaseApplied(case.name, applied_s))
    results: list[CheckResult] = []
    try:
        for c in checks:
            observer(CheckStarted(case.name, c.name))
            results.append(run_check(mesh, case, c, settings, token.version, deadline_s=check_deadline_s, clock=clock,
                                     sleep=sleep))
            _tell(observer, results[-1])
    finally:
        reverting = clock()
        config.close()
    reverted_s = clock() - reverting
    return [replace(r, case_apply_s=applied_s, case_revert_s=reverted_s) for r in results]


def run_check(
    mesh: Mesh,
    case: Case,
    check: Check,
    settings: StatSettings,
    config_version: int,
    *,
    deadline_s: float = 300.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> CheckResult:
    """Send batches until every judge decides; only responses served by ``config_version`` count.

    A check with ``count`` sends exactly that many requests in one batch, and every one of them
    must be served by ``config_version`` (its expectations are about that exact traffic).
    ``clock`` is the time source of the deadline and ``sleep`` waits out ``check.wait_s`` before
    the traffic (parameters so that tests can move time); the deadline starts after that wait.
    """
    if check.wait_s:
        sleep(check.wait_s)
    started = clock()
    try:
        expectations = with_timer_tick(check.expectations, mesh.info().timer_tick_s)
        judges = make_judges(expectations, check.overrides.over(settings), count=check.count)
    except ValueError as exc:  # e.g. max_requests below what alpha and power need
        return _error(case, check, exc, 0.0)
    needs = needs_of(check.expectations)
    spec = replace(check.send, include_echo=check.send.include_echo or "echo" in needs,
                   capture_headers=captured_headers(check.expectations),
                   capture_body=BODY_BYTES if "body" in needs else 0)
    stale = 0
    sent = 0
    tally = TrafficTally(check.expectations)
    answered: set[str] = set()
    traffic_since = time.time() - CLOCK_SLACK_S

    def remaining() -> float:
        left = deadline_s - (clock() - started)
        if left <= 0:
            raise SyncTimeout(
                f"check {check.name!r}: no verdict within {deadline_s:g}s "
                f"({_progress(judges, stale)}); raise the deadline or check that the mesh answers"
            )
        return left

    try:
        before = mesh.proxy_stats(spec.client) if "stats" in needs else {}
        for _ in range(MAX_BATCHES):
            count = requests_needed(judges)
            if count == 0:
                break
            sent_after = time.time() - CLOCK_SLACK_S
            batch = send_cycled(mesh, spec, check.headers_cycle, sent, count, remaining)
            sent += count
            fresh = [o for o in batch if _served_by(o, config_version)]
            stale += len(batch) - len(fresh)
            if check.count is not None and len(fresh) != check.count:
                raise MeshError(
                    f"check {check.name!r}: send.count needs all {check.count} requests served by config version "
                    f"{config_version}, got {len(fresh)} ({stale} from another config, {count - len(batch)} without a record)"
                )
            if stale > MAX_STALE:
                raise SyncTimeout(
                    f"check {check.name!r}: {stale} responses came from another config than version "
                    f"{config_version} (more than {MAX_STALE}); a proxy did not take the applied config"
                )
            copies = _received(mesh, case.topology, fresh, remaining(), sent_after) if "app_log" in needs else {}
            samples = [Sample(o, copies.get(o.request_id, ())) for o in fresh]
            answered.update(o.service for o in fresh if o.service)
            tally.add(samples)
            _feed(judges, samples)
        else:
            if requests_needed(judges):
                raise SyncTimeout(
                    f"check {check.name!r}: no verdict after {MAX_BATCHES} batches ({_progress(judges, stale)}); "
                    "the mesh keeps answering fewer requests than asked"
                )
        if "stats" in needs:
            mesh.drain(min(DRAIN_TIMEOUT_S, remaining()))
            settle(judges, before, mesh.proxy_stats(spec.client))
    except HarnessError as exc:
        return _error(case, check, exc, clock() - started)
    result = verdict(judges)
    seconds = clock() - started
    evidence = None if result.outcome == "pass" else _forensics(mesh, case.topology, spec, answered, traffic_since)
    return CheckResult(
        case.name, check.name, case.file, check.line, result.outcome, result, result.requests, stale,
        seconds, traffic=tally.freeze(), forensics=evidence,
    )


def _forensics(mesh: Mesh, topology: Topology, spec: SendSpec, answered: set[str],
               since: float) -> Forensics | None:
    """Read, before the config is reverted, what the client's proxy holds for the URL's host and the log tails
    (``harness.mesh.forensics``). None when the mesh cannot show its proxies (an attached environment), for
    traffic through the gateway, or when reading fails: forensics help, and never change a verdict."""
    url = urlsplit(spec.url)
    host = url.hostname or ""
    if spec.via != "sidecar" or not isinstance(mesh, Inspectable):
        return None
    services = sorted(answered | ({host.split(".")[0]} & {s.name for s in topology.services}))
    try:
        received = [r for service in services for r in mesh.app_log(service, since=since)]
        return gather(spec.client, host, url.port, mesh.config_dump(spec.client),
                      mesh.access_log_tail(spec.client, LOG_LINES), received)
    except HarnessError:
        return None


def send_cycled(
    mesh: Mesh,
    spec: SendSpec,
    cycle: Sequence[tuple[str, Sequence[str]]],
    first: int,
    count: int,
    remaining: Callable[[], float],
) -> list[Observation]:
    """``count`` requests in one batch, the ``i``-th (counted over the check from ``first``) with the
    ``i mod n``-th value of each cycled header: each cycle is rotated so that the batch's request 0
    takes the value of the check's request ``first``."""
    rotated = tuple((name, (*values[first % len(values):], *values[:first % len(values)])) for name, values in cycle)
    return mesh.send(replace(spec, count=count, headers_cycle=rotated, deadline_s=min(spec.deadline_s, remaining())))


def _received(mesh: Mesh, topology: Topology, batch: Sequence[Observation], remaining_s: float,
              sent_after: float) -> dict[str, tuple[ReceivedRequest, ...]]:
    """Every copy any app logged for the batch's requests, by request id, once nothing is in flight.

    Only entries logged after ``sent_after`` are read: the logs of a mesh that stays up hold every
    request of the run, and reading them whole made each check slower than the one before."""
    mesh.drain(min(DRAIN_TIMEOUT_S, remaining_s))
    ids = {o.request_id for o in batch}
    copies: dict[str, list[ReceivedRequest]] = {}
    for service in topology.services:
        for entry in mesh.app_log(service.name, since=sent_after):
            if entry.request_id in ids:
                copies.setdefault(entry.request_id, []).append(entry)
    return {k: tuple(v) for k, v in copies.items()}


def _progress(judges: Sequence[Judge], stale: int) -> str:
    counted = max((j.n for j in judges), default=0)
    return f"{counted} responses counted, {stale} stale"


def _served_by(obs: Observation, config_version: int) -> bool:
    """A response counts unless a route of another config version stamped it. Local replies that no
    route produced (404 NR) carry no stamp; they are counted, since traffic is sent only after every
    proxy ACKed ``config_version``."""
    return obs.config_version is None or obs.config_version == str(config_version)


def _feed(judges: Sequence[Judge], samples: Sequence[Sample]) -> None:
    for judge in judges:
        judge.add(samples)


def _tell(observer: Observer, result: CheckResult) -> None:
    observer(CheckJudged(result.case, result.check, result.outcome, result.requests, result.seconds))


def _error(case: Case, check: Check, exc: Exception, seconds: float) -> CheckResult:
    return CheckResult(case.name, check.name, case.file, check.line, "error", None, 0, 0, seconds, str(exc))
