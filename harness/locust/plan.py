"""Which of a case's checks a load run sends, and how: the case's checks -> a ``LoadPlan`` for Locust.

Pure. A check's traffic under load is its ``send`` (method, path, headers, cycled headers, body)
with Locust's users and spawn rate instead of its concurrency and rate, and without its ``count``
(the load decides how many). What a load run cannot send or observe is refused here, naming the
check and what to do, never dropped: checks sent from a client other than ``client``, checks of
several ports or protocols in one run (gRPC checks go to ``MeshGrpcUser``, HTTP ones to ``MeshUser``)... and
expectations that need app logs, echoes, response bodies, access-log flags or proxy stats are listed as not
judged under load (``unjudged``), with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from harness.case import Case, Check
from harness.errors import Issue, UnsupportedError
from harness.expect import AnyExpectation, Expectation, Where, captured_headers
from harness.expect.response import Flags
from harness.loadspec import LoadSpec
from harness.locust.wire import LoadPlan, PlannedRequest
from harness.topology import DEFAULT_TOPOLOGY

#: The workload whose sidecar a load run sends through (the Locust process takes its place).
LOAD_CLIENT = DEFAULT_TOPOLOGY.clients[0].name


@dataclass(frozen=True)
class LoadCheck:
    """A check as a load run judges it: the expectations it can judge from records, and the others with why not."""

    check: Check
    judged: tuple[AnyExpectation, ...]
    unjudged: tuple[tuple[AnyExpectation, str], ...]


@dataclass(frozen=True)
class CasePlan:
    """The Locust plan, the checks in its order (``Record.check`` indexes both), and the service port to load."""

    plan: LoadPlan
    checks: tuple[LoadCheck, ...]
    port: int


def plan_case(case: Case, spec: LoadSpec) -> CasePlan:
    """The plan for ``spec.checks`` of ``case`` (every check when empty); UnsupportedError naming the
    check when one cannot be sent under load."""
    chosen = [c for c in case.checks if not spec.checks or c.name in spec.checks]
    issues = [issue for c in chosen for issue in _refusals(case, c)]
    ports = {_port(c.send.url) for c in chosen}
    protocols = {c.send.protocol for c in chosen}
    if not issues and len(ports) > 1:
        issues.append(_issue(case, chosen[0], f"the checks send to service ports {sorted(ports)}; a load run sends "
                             "through one sidecar listener: choose checks of one port with load.checks"))
    elif not issues and len(protocols) > 1:
        issues.append(_issue(case, chosen[0], f"the checks speak {' and '.join(sorted(protocols))}; one Locust user "
                             "class sends a load run: choose checks of one protocol with load.checks"))
    if issues:
        raise UnsupportedError(issues)
    return CasePlan(
        plan=LoadPlan(tuple(_planned(c) for c in chosen)),
        checks=tuple(_load_check(c) for c in chosen),
        port=ports.pop(),
    )


def why_unjudged(expectation: AnyExpectation) -> str | None:
    """Why a load run cannot judge ``expectation`` from its records (None: it can)."""
    needs = expectation.needs
    if "app_log" in needs:
        return "needs the apps' request logs joined per request; judge it with `mesh-harness run`"
    if "echo" in needs:
        return "needs what the app received (its echo); judge it with `mesh-harness run`"
    if "stats" in needs:
        return "needs the sidecar's stat deltas over one check's traffic alone; judge it with `mesh-harness run`"
    if "body" in needs:
        return "needs each response body, which a load run does not keep; judge it with `mesh-harness run`"
    parts = (*expectation.condition, expectation.inner) if isinstance(expectation, Where) else (expectation,)
    if any(isinstance(e, Expectation) and isinstance(e.classify, Flags) for e in parts):
        return "response flags come from the sidecar's access log, which a load run does not join; judge it with `mesh-harness run`"
    return None


def _load_check(check: Check) -> LoadCheck:
    reasons = [(e, why_unjudged(e)) for e in check.expectations]
    return LoadCheck(
        check=check,
        judged=tuple(e for e, why in reasons if why is None),
        unjudged=tuple((e, why) for e, why in reasons if why is not None),
    )


def _planned(check: Check) -> PlannedRequest:
    parts = urlsplit(check.send.url)
    is_grpc = check.send.protocol == "grpc"
    return PlannedRequest(
        check=check.name,
        protocol=check.send.protocol,
        method="POST" if is_grpc else check.send.method,
        path=check.send.grpc_method if is_grpc else (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
        authority=parts.netloc,
        headers=check.send.headers,
        body=check.send.body.decode(),
        timeout_s=check.send.timeout_s,
        headers_cycle=check.headers_cycle,
        capture_headers=captured_headers(check.expectations),
    )


def _refusals(case: Case, check: Check) -> Sequence[Issue]:
    if check.send.client != LOAD_CLIENT:
        return [_issue(case, check, f"sends from {check.send.client!r}; a load run sends as {LOAD_CLIENT!r} only: "
                       "leave this check out with load.checks")]
    return []


def _issue(case: Case, check: Check, message: str) -> Issue:
    return Issue(f"check {check.name!r} {message}", case.file, check.line, f"case {case.name}", "load.checks")


def _port(url: str) -> int:
    return urlsplit(url).port or 80
