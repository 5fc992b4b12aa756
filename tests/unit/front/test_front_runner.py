"""The send/judge loop against the fake mesh: verdicts, stale responses, bounds, and revert.

Statistical outcomes here are deterministic: the fake mesh draws from a seeded random.Random.
The comment on each such test also states the chance of the wrong outcome for an arbitrary seed,
computed exactly from the design (``FractionDesign.operating``), so a seed change cannot make it flaky.
"""

from __future__ import annotations

import random
import time

import pytest

from harness.errors import ConfigRejected, SyncTimeout
from harness.mesh.base import Observation, ReceivedRequest, SendSpec
from harness.mesh.fake import FakeMesh, Handler, Reply, draw
from harness.progress import CaseApplied, CheckJudged, CheckStarted
from harness.runner import CLOCK_SLACK_S, MAX_BATCHES, MAX_STALE, run_case, run_check, send_cycled
from harness.settings import StatSettings
from harness.stats.fractions import FractionDesign
from tests.unit.front.front_builders import make_case, make_case_text, make_check

SETTINGS = StatSettings()


def one_check_case(expect: str, extra: str = "") -> str:
    return make_case_text(make_check("the check", expect, extra=extra))


@pytest.mark.parametrize(
    ("expect", "handler"),
    [
        ("{version: {v1: 0.9, v2: 0.1}}", draw({"v1": 0.9, "v2": 0.1})),
        ("{status: {200: 0.5, 503: 0.5}}", draw(statuses={200: 0.5, 503: 0.5})),
        ("{version: v2, status: 200}", draw({"v2": 1.0})),
        ("{version: none, status: 404}", draw({None: 1.0}, {404: 1.0})),
        ("{version: {v1: 0.5, v2: 0.5}, status: 200}", draw({"v1": 0.5, "v2": 0.5})),
    ],
)
def test_runner_correct_mesh_passes_each_expectation_kind(expect: str, handler: Handler) -> None:
    # Deterministic (seed 7). For any seed a correct mesh fails or is inconclusive with probability
    # at most alpha = 1e-6 per fractional check (the design's guarantee); every-response checks cannot fail.
    case = make_case(one_check_case(expect))
    mesh = FakeMesh(handler, seed=7)
    (result,) = run_case(mesh, case, SETTINGS)
    assert (result.outcome, result.error, result.stale) == ("pass", None, 0)
    assert result.verdict is not None and result.requests == result.verdict.requests
    assert result.requests == sum(s.count for s in mesh.sent)
    assert all(s.url == "http://reviews:9080/" for s in mesh.sent)


def test_runner_broken_split_fails() -> None:
    design = FractionDesign.plan({"v1": 0.9, "v2": 0.1})
    # Deterministic (seed 7). For any seed, a 70/30 mesh passes a 90/10 check with probability:
    assert design.operating({"v1": 0.7, "v2": 0.3}).p_pass < 1e-18
    case = make_case(one_check_case("{version: {v1: 0.9, v2: 0.1}}"))
    (result,) = run_case(FakeMesh(draw({"v1": 0.7, "v2": 0.3}), seed=7), case, SETTINGS)
    assert result.outcome == "fail" and result.verdict is not None
    (evidence,) = result.verdict.evidence
    assert evidence.n == design.looks[0]
    assert evidence.observed["v2"] == pytest.approx(0.3, abs=0.06)


def test_runner_every_response_check_fails_on_the_first_leak() -> None:
    replies = iter([Reply(version="v2")] * 20 + [Reply(version="v1")])
    case = make_case(one_check_case("{version: v2}"))
    (result,) = run_case(FakeMesh(lambda spec, rng: next(replies, Reply(version="v2"))), case, SETTINGS)
    assert result.outcome == "fail" and result.verdict is not None
    example = result.verdict.evidence[0].counterexample
    assert example is not None and (example.index, example.request_id, example.got) == (21, "fake-20", "v1")


def stale_first(stale: int, then: Handler) -> Handler:
    """The first ``stale`` replies come from the previous config version, then ``then`` answers."""
    sent = iter(range(stale))

    def handler(spec: SendSpec, rng: random.Random) -> Reply:
        return Reply(version="v2", stale=True) if next(sent, None) is not None else then(spec, rng)

    return handler


def test_runner_stale_responses_are_not_counted_and_are_resent() -> None:
    case = make_case(one_check_case("{version: v2}"))
    mesh = FakeMesh(stale_first(50, draw({"v2": 1.0})))
    (result,) = run_case(mesh, case, SETTINGS)
    assert (result.outcome, result.stale, result.requests) == ("pass", 50, 135)
    assert [s.count for s in mesh.sent] == [135, 50]


def test_runner_unstamped_local_replies_are_counted() -> None:
    case = make_case(one_check_case("{status: 404}"))
    (result,) = run_case(FakeMesh(lambda spec, rng: Reply(status=404, version=None, stamped=False)), case, SETTINGS)
    assert (result.outcome, result.stale) == ("pass", 0)


def test_runner_error_when_stale_responses_exceed_the_bound() -> None:
    case = make_case(one_check_case("{version: v2}"))
    mesh = FakeMesh(lambda spec, rng: Reply(version="v2", stale=True))
    (result,) = run_case(mesh, case, SETTINGS)
    batches = MAX_STALE // 135 + 1
    assert (result.outcome, result.verdict, len(mesh.sent)) == ("error", None, batches)
    assert result.error == (
        f"check 'the check': {batches * 135} responses came from another config than version 1 "
        f"(more than {MAX_STALE}); a proxy did not take the applied config"
    )
    assert len(mesh.reverted) == 1


class SlowClock:
    """A clock that the fake mesh moves forward by ``per_batch`` seconds on every send."""

    def __init__(self, per_batch: float) -> None:
        self.now = 1000.0
        self.per_batch = per_batch

    def __call__(self) -> float:
        return self.now

    def handler(self, then: Handler) -> Handler:
        def handler(spec: SendSpec, rng: random.Random) -> Reply:
            self.now += self.per_batch / spec.count  # the batch's requests share the move
            return then(spec, rng)

        return handler


def test_runner_error_when_the_deadline_passes() -> None:
    clock = SlowClock(per_batch=200.0)
    case = make_case(one_check_case("{version: v2}"))
    mesh = FakeMesh(clock.handler(stale_first(10_000, draw({"v2": 1.0}))))
    (result,) = run_case(mesh, case, SETTINGS, check_deadline_s=300.0, clock=clock)
    assert len(mesh.sent) == 2
    assert mesh.sent[1].deadline_s == pytest.approx(100.0)
    assert result.outcome == "error"
    assert result.error == (
        "check 'the check': no verdict within 300s (0 responses counted, 270 stale); "
        "raise the deadline or check that the mesh answers"
    )


class Silent(FakeMesh):
    """A mesh whose batches come back empty (every request dropped without a record)."""

    def send(self, spec: SendSpec) -> list[Observation]:
        super().send(spec)
        return []


def test_runner_error_when_batches_run_out() -> None:
    case = make_case(one_check_case("{version: v2}"))
    mesh = Silent()
    (result,) = run_case(mesh, case, SETTINGS)
    assert (result.outcome, len(mesh.sent)) == ("error", MAX_BATCHES)
    assert result.error == (
        f"check 'the check': no verdict after {MAX_BATCHES} batches (0 responses counted, 0 stale); "
        "the mesh keeps answering fewer requests than asked"
    )


def test_runner_error_when_max_requests_is_below_the_design() -> None:
    case = make_case(one_check_case("{version: {v1: 0.9, v2: 0.1}}", extra="max_requests: 10"))
    mesh = FakeMesh()
    (result,) = run_case(mesh, case, SETTINGS)
    assert result.outcome == "error" and result.error is not None
    assert result.error.startswith("max_requests=10 is too small")
    assert mesh.sent == [] and len(mesh.reverted) == 1


def test_runner_reverts_after_the_case_even_when_a_check_errors() -> None:
    text = make_case_text(make_check("first", "{version: v2}"), make_check("second", "{version: v2}"))
    case = make_case(text)

    def handler(spec: SendSpec, rng: random.Random) -> Reply:
        raise SyncTimeout("node client.default: no response")

    mesh = FakeMesh(handler)
    results = run_case(mesh, case, SETTINGS)
    assert [(r.check, r.outcome, r.error) for r in results] == [
        ("first", "error", "node client.default: no response"),
        ("second", "error", "node client.default: no response"),
    ]
    assert mesh.deployed == [case.topology]
    assert mesh.applied == [case.objects]
    assert [t.version for t in mesh.reverted] == [1] and mesh.objects == ()


def test_runner_reverts_even_when_a_check_raises_a_bug() -> None:
    case = make_case(one_check_case("{version: v2}"))

    def handler(spec: SendSpec, rng: random.Random) -> Reply:
        raise RuntimeError("bug")

    mesh = FakeMesh(handler)
    with pytest.raises(RuntimeError, match="bug"):
        run_case(mesh, case, SETTINGS)
    assert len(mesh.reverted) == 1


def test_runner_apply_error_marks_every_selected_check() -> None:
    text = make_case_text(make_check("a", "{version: v2}"), make_check("b", "{version: v2}"))
    mesh = FakeMesh(fail_apply=ConfigRejected("client.default", "RouteConfiguration", "2", "bad regex"))
    results = run_case(mesh, make_case(text), SETTINGS, select=lambda c: c.name == "b")
    assert [(r.check, r.outcome) for r in results] == [("b", "error")]
    assert results[0].error is not None and results[0].error.startswith("Envoy node client.default rejected RouteConfiguration")
    assert mesh.reverted == [] and mesh.sent == []


def test_runner_nothing_selected_applies_nothing() -> None:
    mesh = FakeMesh()
    assert run_case(mesh, make_case(one_check_case("{version: v2}")), SETTINGS, select=lambda c: False) == []
    assert (mesh.deployed, mesh.applied) == ([], [])


def test_run_check_counts_only_the_given_config_version() -> None:
    case = make_case(one_check_case("{version: v2}"))
    mesh = FakeMesh(draw({"v2": 1.0}))
    mesh.apply(case.objects)
    mesh.apply(case.objects)  # version 2 is in force; replies are stamped "2"
    result = run_check(mesh, case, case.checks[0], SETTINGS, config_version=2)
    assert (result.outcome, result.stale) == ("pass", 0)


def test_runner_waits_out_policy_time_between_checks_and_not_against_the_deadline() -> None:
    text = make_case_text(make_check("eject", "{version: v2}"), make_check("recover", "{version: v2}", extra="wait: 2.5s"))
    events: list[str] = []
    clock = SlowClock(per_batch=1.0)

    def sleep(seconds: float) -> None:
        events.append(f"sleep {seconds:g}")
        clock.now += seconds

    def handler(spec: SendSpec, rng: random.Random) -> Reply:
        events.append("request")
        return clock.handler(draw({"v2": 1.0}))(spec, rng)

    # Each check's 135 requests move the clock 1s; the 2.5s wait would break a 2s deadline if it counted.
    results = run_case(FakeMesh(handler), make_case(text), SETTINGS, clock=clock, sleep=sleep, check_deadline_s=2.0)
    assert [(r.outcome, r.requests) for r in results] == [("pass", 135), ("pass", 135)]
    assert events.index("sleep 2.5") == 135 and len(events) == 271  # after all of the first check's traffic, once
    assert results[1].seconds == pytest.approx(1.0)


def test_runner_reads_app_logs_only_from_just_before_each_batch() -> None:
    """A mesh that stays up logs every request of the run; a check reads only what came after it sent."""
    case = make_case(one_check_case("{attempts: 1}"))
    mesh = FakeMesh()
    asked: list[float] = []
    app_log = mesh.app_log

    def recording(service: str, version: str | None = None, *, since: float = 0.0) -> list[ReceivedRequest]:
        asked.append(since)
        return app_log(service, version, since=since)

    mesh.app_log = recording  # type: ignore[method-assign]
    began = time.time()
    (result,) = run_case(mesh, case, SETTINGS)
    assert result.outcome == "pass"
    assert asked and all(began - CLOCK_SLACK_S - 1.0 <= s <= time.time() for s in asked)


def test_runner_tells_its_observer_of_the_apply_and_each_check_in_order() -> None:
    case = make_case(make_case_text(make_check("first", "{version: v2}"), make_check("second", "{status: 200}")))
    seen: list[object] = []
    results = run_case(FakeMesh(draw({"v2": 1.0})), case, SETTINGS, observer=seen.append)
    applied, *rest = seen
    assert isinstance(applied, CaseApplied) and applied.case == "demo" and applied.error is None
    assert rest == [CheckStarted("demo", "first"), CheckJudged("demo", "first", "pass", 135, results[0].seconds),
                    CheckStarted("demo", "second"), CheckJudged("demo", "second", "pass", 135, results[1].seconds)]


def test_runner_tells_its_observer_when_a_case_cannot_be_applied() -> None:
    case = make_case(make_case_text(make_check("first", "{version: v2}")))
    seen: list[object] = []
    run_case(FakeMesh(fail_apply=SyncTimeout("RDS still at 0")), case, SETTINGS, observer=seen.append)
    applied, judged = seen
    assert isinstance(applied, CaseApplied) and applied.error == "RDS still at 0"
    assert isinstance(judged, CheckJudged) and (judged.check, judged.outcome) == ("first", "error")


class InspectableFake(FakeMesh):
    """A fake mesh that can show its proxy, as the local and kind meshes can (for failure forensics)."""

    def __init__(self, handler: Handler, dump: dict[str, object]) -> None:
        super().__init__(handler, seed=5)
        self.dump = dump
        self.asked: list[str] = []

    def config_dump(self, workload: str) -> dict[str, object]:
        self.asked.append(f"config_dump {workload} reverted={len(self.reverted)}")
        return self.dump

    def access_log_tail(self, workload: str, lines: int) -> list[str]:
        self.asked.append(f"access_log_tail {workload} {lines}")
        return ['{"response_code": 200, "upstream_cluster": "outbound|9080|v1|reviews"}']


def test_runner_failed_check_carries_forensics_read_before_the_revert() -> None:
    from tests.unit.mesh.test_mesh_forensics import SPLIT, V1, V2, V3, config_dump

    case = make_case(make_case_text(make_check("all v2", "{version: v2}"), make_check("ok", "{status: 200}")))
    mesh = InspectableFake(draw({"v1": 1.0}), config_dump(SPLIT, [V1, V2, V3]))
    failed, passed = run_case(mesh, case, SETTINGS)
    assert failed.outcome == "fail" and passed.outcome == "pass" and passed.forensics is None
    assert mesh.asked == ["config_dump client reverted=0", "access_log_tail client 10"]  # once, before revert
    assert failed.forensics is not None and failed.forensics.host == "reviews"
    assert [c["name"] for c in failed.forensics.clusters] == [V1, V2, V3]
    assert failed.forensics.access_log == ("response_code=200 upstream_cluster=outbound|9080|v1|reviews",)


def test_runner_mesh_that_cannot_show_its_proxy_gives_no_forensics() -> None:
    case = make_case(make_case_text(make_check("all v2", "{version: v2}")))
    (failed,) = run_case(FakeMesh(draw({"v1": 1.0})), case, SETTINGS)
    assert failed.outcome == "fail" and failed.forensics is None


def test_send_cycled_continues_the_cycle_where_the_previous_batch_stopped() -> None:
    mesh = FakeMesh(draw(), seed=1)
    for first, count in ((0, 3), (3, 6)):
        send_cycled(mesh, SendSpec(url="http://reviews:9080/"), (("x-user", ("a", "b", "c", "d")),), first, count,
                    lambda: 10.0)
    assert [s.count for s in mesh.sent] == [3, 6]  # one batch each
    assert [dict(r.headers)["x-user"] for r in mesh.received] == list("abcdabcda")
