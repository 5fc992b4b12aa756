"""A case -> the Locust plan: which checks, their requests as sent through the sidecar, what is refused."""

from __future__ import annotations

import pytest

from harness.errors import UnsupportedError
from harness.loadspec import LoadSpec
from harness.locust.plan import plan_case
from harness.locust.wire import PlannedRequest
from tests.unit.load.load_builders import CANARY, make_case

TWO_CHECKS = CANARY + """\
  - name: grpc
    send: {url: "grpc://reviews:7070", protocol: grpc}
    expect: {grpc_status: OK}
  - name: mirror
    send: {url: "http://reviews:9080/"}
    expect: {mirror: {service: reviews, version: v2, fraction: 1.0}, stats: {upstream_rq_retry: {at_most: 0}}}
"""


def test_load_plan_request_keeps_the_checks_traffic() -> None:
    plan = plan_case(make_case(), LoadSpec())
    assert plan.port == 9080
    assert plan.plan.requests == (PlannedRequest(
        check="split", method="GET", path="/a?x=1", authority="reviews:9080", headers=(("x-user", "jason"),),
        body="", timeout_s=30.0, headers_cycle=(("x-key", ("a", "b")),), capture_headers=("location",),
    ),)


def test_load_plan_grpc_check_is_a_unary_call_to_its_method() -> None:
    plan = plan_case(make_case(TWO_CHECKS), LoadSpec(checks=("grpc",)))
    assert plan.port == 7070 and plan.plan.protocol == "grpc"
    assert plan.plan.requests == (PlannedRequest(
        check="grpc", method="POST", path="/echo.Echo/Call", authority="reviews:7070", protocol="grpc",
    ),)


def test_load_plan_refuses_http_and_grpc_in_one_run_naming_the_fix() -> None:
    text = CANARY.replace("http://reviews:9080/a?x=1", "http://reviews:7070/") + """  - name: grpc
    send: {url: "grpc://reviews:7070", protocol: grpc}
    expect: {grpc_status: OK}
"""
    with pytest.raises(UnsupportedError) as info:
        plan_case(make_case(text), LoadSpec())
    (issue,) = info.value.issues
    assert str(issue).endswith("load.checks: check 'split' the checks speak grpc and http; one Locust user class "
                               "sends a load run: choose checks of one protocol with load.checks")


def test_load_plan_selected_checks_and_what_is_not_judged_under_load() -> None:
    plan = plan_case(make_case(TWO_CHECKS), LoadSpec(checks=("split", "mirror")))
    assert [c.check.name for c in plan.checks] == ["split", "mirror"]
    assert len(plan.checks[0].judged) == 3 and not plan.checks[0].unjudged
    reasons = [why for _, why in plan.checks[1].unjudged]
    assert not plan.checks[1].judged
    assert reasons == ["needs the apps' request logs joined per request; judge it with `mesh-harness run`",
                       "needs the sidecar's stat deltas over one check's traffic alone; judge it with `mesh-harness run`"]


def test_load_plan_refuses_checks_on_two_ports() -> None:
    text = CANARY + """\
  - name: other port
    send: {url: "http://reviews:7070/"}
    expect: {status: 200}
"""
    with pytest.raises(UnsupportedError, match=r"send to service ports \[7070, 9080\]"):
        plan_case(make_case(text), LoadSpec())


def test_load_plan_does_not_judge_flags_inside_an_expect_where() -> None:
    case = make_case(CANARY.replace(
        "    expect: {version: {v1: 0.9, v2: 0.1}, status: 200, headers: {location: null}}",
        "    expect: {status: 200}\n    expect_where:\n      - {where: {status: 503}, expect: {flags: UO}}",
    ))
    plan = plan_case(case, LoadSpec())
    assert [why for _, why in plan.checks[0].unjudged] == [
        "response flags come from the sidecar's access log, which a load run does not join; judge it with `mesh-harness run`"
    ]
