"""Every expect key end to end on the fake mesh: YAML -> expectations -> judges -> verdict and evidence.

The fake mesh scripts what Envoy and the apps would have shown (flags, echoes, app-log copies,
sidecar counters), so each judge is tested without processes. Runs are deterministic (seeded);
where a check is statistical its comment states the chance that a correct mesh fails it for any
seed: at most the check's alpha (1e-6), the design's guarantee.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

import pytest

from harness.mesh.base import Echo, SendSpec
from harness.mesh.fake import FAKE_INFO, Copy, FakeMesh, Reply
from harness.result import CheckResult, Evidence
from harness.runner import run_case
from harness.settings import StatSettings
from tests.unit.front.front_builders import make_case

SETTINGS = StatSettings()
Handler = Callable[[SendSpec, random.Random], Reply]


def case_text(expect: str, send: str = "", services: str = "") -> str:
    return (f"name: demo\n{services}checks:\n  - name: the check\n"
            f'    send: {{url: "http://reviews:9080/a?b=1"{send}}}\n    expect: {expect}\n')


def run(expect: str, handler: Handler, *, send: str = "", services: str = "", seed: int = 5,
        timer_tick_s: float = 0.0) -> tuple[CheckResult, FakeMesh]:
    mesh = FakeMesh(handler, seed=seed, info=replace(FAKE_INFO, timer_tick_s=timer_tick_s))
    (result,) = run_case(mesh, make_case(case_text(expect, send, services)), SETTINGS)
    return result, mesh


def always(reply: Reply) -> Handler:
    return lambda spec, rng: reply


def coin(heads: Reply, tails: Reply) -> Handler:
    return lambda spec, rng: heads if rng.random() < 0.5 else tails


def only_evidence(result: CheckResult) -> Evidence:
    assert result.verdict is not None, result.error
    (evidence,) = result.verdict.evidence
    return evidence


def failed_with(result: CheckResult, got: str) -> Evidence:
    evidence = only_evidence(result)
    assert (result.outcome, evidence.outcome) == ("fail", "fail"), evidence.rule
    assert evidence.counterexample is not None and evidence.counterexample.got == got
    return evidence


# --- grpc_status, flags, headers ------------------------------------------------------------


@pytest.mark.parametrize("written", ["UNAVAILABLE", "unavailable", "14"])
def test_expect_grpc_status_by_name_or_number(written: str) -> None:
    result, _ = run(f"{{grpc_status: {written}}}", always(Reply(grpc_status=14)))
    assert result.outcome == "pass" and only_evidence(result).expected == {"UNAVAILABLE": 1.0}


def test_expect_grpc_status_counterexample_and_split() -> None:
    result, _ = run("{grpc_status: OK}", always(Reply()))
    failed_with(result, "none")  # an HTTP reply carries no gRPC status
    # Statistical: a correct 50/50 mesh fails with probability <= 1e-6 for any seed.
    result, _ = run("{grpc_status: {OK: 0.5, 14: 0.5}}", coin(Reply(grpc_status=0), Reply(grpc_status=14)))
    assert result.outcome == "pass" and set(only_evidence(result).counts) == {"OK", "UNAVAILABLE"}


def test_expect_flags_every_in_any_order_and_counterexample() -> None:
    assert run("{flags: UO}", always(Reply(status=503, version=None, flags=("UO",))))[0].outcome == "pass"
    assert run('{flags: "FI,DI"}', always(Reply(flags=("DI", "FI"))))[0].outcome == "pass"
    replies = iter([Reply(flags=("FI",))] * 3)
    result, _ = run("{flags: FI}", lambda spec, rng: next(replies, Reply()))
    evidence = failed_with(result, "-")
    assert evidence.counterexample is not None and (evidence.counterexample.index, evidence.counterexample.request_id) == (4, "fake-3")


def test_expect_flags_split_with_no_flag_category() -> None:
    # Statistical: a correct 50/50 mesh fails with probability <= 1e-6 for any seed.
    result, _ = run('{flags: {FI: 0.5, "-": 0.5}, status: {418: 0.5, 200: 0.5}}',
                    coin(Reply(status=418, version=None, flags=("FI",)), Reply()))
    assert result.outcome == "pass" and result.verdict is not None
    assert [e.alpha for e in result.verdict.evidence] == [5e-7, 5e-7]


def test_expect_headers_value_present_and_absent() -> None:
    reply = Reply(status=503, version=None, headers={"x-envoy-overloaded": "true", "server": "envoy"})
    expect = '{headers: {x-envoy-overloaded: "true", Server: true, x-envoy-upstream-service-time: null}}'
    result, _ = run(expect, always(reply))
    assert result.outcome == "pass" and result.verdict is not None
    assert [e.field for e in result.verdict.evidence] == [
        "headers.x-envoy-overloaded", "headers.server", "headers.x-envoy-upstream-service-time"]
    result, _ = run("{headers: {x-envoy-upstream-service-time: null}}", always(Reply(headers={"x-envoy-upstream-service-time": "3"})))
    failed_with(result, "3")
    result, _ = run("{headers: {x-envoy-attempt-count: 3}}", always(Reply()))
    failed_with(result, "(absent)")


# --- upstream -------------------------------------------------------------------------------


def test_expect_upstream_asks_for_echoes_and_judges_what_the_app_received() -> None:
    expect = '{upstream: {path: "/a?b=1", host: "reviews:9080", method: GET, headers: {x-user: alice, x-gone: null}}}'
    result, mesh = run(expect, always(Reply()), send=", headers: {x-user: alice}")
    assert result.outcome == "pass" and all(s.include_echo for s in mesh.sent)
    rewritten = Echo("GET", "/new/path?b=1", "reviews:9080", "HTTP/1.1", {})
    result, _ = run("{upstream: {path: \"/new/path?b=1\"}}", always(Reply(echo=rewritten)))
    assert result.outcome == "pass"
    result, _ = run("{upstream: {path: /new/path}}", always(Reply(status=301, version=None)))
    failed_with(result, "(no echo)")


def test_expect_checks_without_upstream_do_not_ask_for_echoes() -> None:
    _, mesh = run("{status: 200}", always(Reply()))
    assert not any(s.include_echo for s in mesh.sent)


# --- latency --------------------------------------------------------------------------------


def test_expect_latency_bounds_every_request() -> None:
    assert run("{latency: {at_least: 200ms, below: 5s}}", always(Reply(latency_s=0.25)))[0].outcome == "pass"
    replies = iter([Reply(latency_s=2.1)] * 9 + [Reply(latency_s=0.1)])
    result, _ = run("{latency: {at_least: 2s}}", lambda spec, rng: next(replies, Reply(latency_s=2.1)))
    evidence = failed_with(result, "below 2s (100ms)")
    assert evidence.rule == "fail: request 10 answered latency below 2s (100ms), want every at least 2s"


def test_expect_latency_fraction_at_least_is_a_split() -> None:
    # Statistical: a correct 50% delay fails with probability <= 1e-6 for any seed.
    result, _ = run("{latency: {fraction_at_least: {bound: 200ms, expected: 0.5}}}",
                    coin(Reply(latency_s=0.3, flags=("DI",)), Reply(latency_s=0.01)))
    evidence = only_evidence(result)
    assert result.outcome == "pass" and evidence.kind == "fraction"
    assert set(evidence.counts) == {"at least 200ms", "below 200ms"}


def test_expect_latency_quantile_passes_and_fails() -> None:
    # P(a correct mesh fails) <= alpha = 1e-6 (QuantileDesign's guarantee); here every value is far below.
    result, _ = run("{latency: {p99: {below: 1s}}}", always(Reply(latency_s=0.01)))
    evidence = only_evidence(result)
    assert (result.outcome, evidence.kind, evidence.counts) == ("pass", "quantile", {"at or above 1s": 0})
    assert evidence.summary is not None and evidence.summary.startswith("p99 10ms; 0 of")
    result, _ = run("{latency: {p50: {at_least: 200ms}}}", always(Reply(latency_s=0.01)))
    assert result.outcome == "fail" and only_evidence(result).rule.startswith("fail:")


def test_expect_latency_lower_bound_allows_one_timer_tick_and_says_so() -> None:
    # Envoy's timers can end up to one tick of the coarse clock early, and a little more for the
    # event-loop iteration that armed them: 494.97ms (CI beside a soak saw a 20ms delay end 5.03ms early) meets
    # "at least 500ms" on a mesh whose tick is 4ms, and the verdict states the tolerance it used.
    result, _ = run("{latency: {at_least: 500ms}}", always(Reply(latency_s=0.49497)), timer_tick_s=0.004)
    evidence = only_evidence(result)
    assert result.outcome == "pass", evidence.rule
    assert evidence.expectation == "every latency = at least 500ms (less 1 timer tick of 4ms + 2ms event loop)"
    # Earlier than the tick and the slack is a real miss.
    replies = iter([Reply(latency_s=0.6)] * 3 + [Reply(latency_s=0.4939)])
    result, _ = run("{latency: {at_least: 500ms}}", lambda spec, rng: next(replies, Reply(latency_s=0.6)), timer_tick_s=0.004)
    failed_with(result, "below 500ms (493.9ms)")


def test_expect_latency_timers_allow_a_tick_per_timer() -> None:
    # Three per-try timeouts of 200ms, each up to a tick and the slack early: 590ms meets "at least 600ms" with timers: 3.
    result, _ = run("{latency: {at_least: 600ms, timers: 3}}", always(Reply(latency_s=0.590)), timer_tick_s=0.004)
    assert result.outcome == "pass", only_evidence(result).rule
    assert only_evidence(result).expectation.endswith("(less 3 x (timer tick of 4ms + 2ms event loop))")
    result, _ = run("{latency: {at_least: 600ms}}", always(Reply(latency_s=0.590)), timer_tick_s=0.004)
    failed_with(result, "below 600ms (590ms)")


def test_expect_latency_split_and_quantile_lower_bounds_take_the_tolerance() -> None:
    # Statistical: a correct 50% delay fails with probability <= 1e-6 for any seed; the delayed
    # half ends 1ms early, within the 4ms tick, so it still counts as "at least 200ms".
    result, _ = run("{latency: {fraction_at_least: {bound: 200ms, expected: 0.5}}}",
                    coin(Reply(latency_s=0.199, flags=("DI",)), Reply(latency_s=0.01)), timer_tick_s=0.004)
    assert result.outcome == "pass", only_evidence(result).rule
    assert set(only_evidence(result).counts) == {"at least 200ms (less 1 timer tick of 4ms + 2ms event loop)", "below 200ms"}
    result, _ = run("{latency: {p50: {at_least: 200ms}}}", always(Reply(latency_s=0.199)), timer_tick_s=0.004)
    assert result.outcome == "pass", only_evidence(result).rule
    assert only_evidence(result).expectation == "latency.p50 at least 200ms (less 1 timer tick of 4ms + 2ms event loop)"


def test_expect_latency_upper_bounds_take_no_tolerance() -> None:
    replies = iter([Reply(latency_s=0.1)] * 3 + [Reply(latency_s=1.001)])
    result, _ = run("{latency: {below: 1s}}", lambda spec, rng: next(replies, Reply(latency_s=0.1)), timer_tick_s=0.004)
    failed_with(result, "1s or more (1.001s)")


# --- attempts, mirror, received (app logs) --------------------------------------------------


def test_expect_attempts_counts_copies_by_request_id_after_drain() -> None:
    result, mesh = run("{attempts: 3}", always(Reply(copies=(Copy(replica=0), Copy(replica=1), Copy(version="v2")))))
    assert result.outcome == "pass" and len(mesh.drained) == len(mesh.sent) >= 1
    result, _ = run("{attempts: 1}", always(Reply(copies=(Copy(), Copy()))))
    failed_with(result, "2")


def test_expect_attempts_split() -> None:
    # Statistical: a correct 50/50 mesh fails with probability <= 1e-6 for any seed.
    result, _ = run("{attempts: {1: 0.5, 2: 0.5}}", coin(Reply(), Reply(copies=(Copy(), Copy()))))
    assert result.outcome == "pass"


def test_expect_mirror_every_none_and_host() -> None:
    mirrored = Reply(copies=(Copy("reviews", "v1"), Copy("reviews", "v2", host="reviews-shadow:9080")))
    assert run("{version: v1, mirror: {service: reviews, version: v2}}", always(mirrored))[0].outcome == "pass"
    assert run("{mirror: {service: reviews, version: v2, fraction: 0}}", always(Reply()))[0].outcome == "pass"
    result, _ = run('{mirror: {service: reviews, version: v2, host: "reviews:9080"}}', always(mirrored))
    failed_with(result, "mirrored with host reviews-shadow:9080")


def test_expect_mirror_to_the_answering_version_does_not_count_the_answer() -> None:
    result, _ = run("{mirror: {service: reviews, fraction: 1.0}}", always(Reply()))
    failed_with(result, "not mirrored")
    both = Reply(copies=(Copy("reviews", "v1"), Copy("reviews", "v1", replica=1)))
    assert run("{mirror: {service: reviews, fraction: 1.0}}", always(both), services="services: {reviews: {replicas: {v1: 2}}}\n")[0].outcome == "pass"


def test_expect_mirror_split_and_two_targets() -> None:
    # Statistical: a correct 50% mirror fails with probability <= 1e-6 for any seed.
    heads = Reply(copies=(Copy("reviews", "v1"), Copy("reviews", "v2")))
    result, _ = run("{mirror: {service: reviews, version: v2, fraction: 0.5}}", coin(heads, Reply()))
    assert result.outcome == "pass"
    two = Reply(copies=(Copy("reviews", "v1"), Copy("reviews", "v2"), Copy("reviews", "v3")))
    expect = "{mirror: [{service: reviews, version: v2}, {service: reviews, version: v3}]}"
    result, _ = run(expect, always(two), services="services: {reviews: {versions: [v1, v2, v3]}}\n")
    assert result.outcome == "pass" and result.verdict is not None
    assert [e.field for e in result.verdict.evidence] == ["mirror[0]", "mirror[1]"]


def test_expect_received_none() -> None:
    abort = Reply(status=418, version=None, flags=("FI",))
    assert run("{received: none, status: 418, flags: FI}", always(abort))[0].outcome == "pass"
    result, _ = run("{received: none}", always(Reply(copies=(Copy(), Copy()))))
    failed_with(result, "received by reviews-v1-0 x2")


# --- aggregates: stats, same_instance, instances --------------------------------------------

OVERFLOW = "cluster.outbound|9080||reviews.default.svc.cluster.local;.upstream_rq_pending_overflow"


def test_expect_stats_delta_sums_matching_counters() -> None:
    replies = iter([Reply(status=503, version=None, flags=("UO",), stats={OVERFLOW: 1})] * 3)

    def handler(spec: SendSpec, rng: random.Random) -> Reply:
        return next(replies, Reply(stats={"cluster.x.upstream_rq_pending_overflow_other": 5}))

    expect = '{stats: {"upstream_rq_pending_overflow|upstream_rq_active_overflow": {at_least: 1, at_most: 3}}}'
    result, mesh = run(expect, handler, send=", count: 10, concurrency: 10")
    evidence = only_evidence(result)
    assert (result.outcome, evidence.kind, evidence.n, [s.count for s in mesh.sent]) == ("pass", "aggregate", 10, [10])
    assert evidence.counts == {OVERFLOW: 3} and evidence.summary == f"delta 3 (want in [1, 3]): {OVERFLOW} +3"
    result, _ = run("{stats: {upstream_rq_pending_overflow: {equal: 0}}}", lambda spec, rng: Reply(stats={OVERFLOW: 1}))
    assert result.outcome == "fail" and only_evidence(result).rule.startswith("fail: delta 135 over 1 matching counters, want = 0")


def test_expect_stats_without_a_matching_counter_fails_naming_it() -> None:
    result, _ = run("{stats: {upstream_rq_retyr: {at_least: 1}}}", always(Reply(stats={OVERFLOW: 1})))
    assert result.outcome == "fail"
    assert only_evidence(result).rule.startswith(
        "fail: no counter of the client's sidecar is named upstream_rq_retyr or ends in .upstream_rq_retyr")


TWO_REPLICAS = "services: {reviews: {versions: [v1], replicas: {v1: 2}}}\n"


def test_expect_same_instance_and_its_counterexample() -> None:
    result, _ = run("{same_instance: true}", always(Reply(replica=1)), services=TWO_REPLICAS)
    assert result.outcome == "pass" and only_evidence(result).summary == "reviews-v1-1 x135"
    replies = iter([Reply(replica=1)] * 4)
    result, _ = run("{same_instance: true}", lambda spec, rng: next(replies, Reply(replica=0)), services=TWO_REPLICAS)
    evidence = failed_with(result, "reviews-v1-0")
    assert evidence.rule == "fail: request 5 came from reviews-v1-0, earlier ones from reviews-v1-1"


def test_expect_instances_with_cycled_hash_keys() -> None:
    def by_key(spec: SendSpec, rng: random.Random) -> Reply:
        return Reply(replica=0 if dict(spec.headers)["x-user"] in "ac" else 1)

    send = ', count: 8, headers: {x-other: "1"}, headers_cycle: {x-user: [a, b, c, d]}'
    result, mesh = run("{instances: {at_least: 2}, status: 200}", by_key, send=send, services=TWO_REPLICAS)
    assert result.outcome == "pass" and result.requests == 8
    (sent,) = mesh.sent  # one batch; request i carries value i mod 4
    assert (sent.count, sent.headers, sent.headers_cycle) == (8, (("x-other", "1"),), (("x-user", ("a", "b", "c", "d")),))
    assert [dict(r.headers)["x-user"] for r in mesh.received] == list("abcdabcd")
    result, _ = run("{instances: {at_least: 2}}", always(Reply()), services=TWO_REPLICAS)
    assert result.outcome == "fail"
    assert only_evidence(result).rule == "fail: 1 distinct instances answered 135 requests, want >= 2"


# --- count ----------------------------------------------------------------------------------


def test_expect_count_sends_exactly_one_batch_and_judges_it() -> None:
    result, mesh = run("{status: 503, flags: UO}", always(Reply(status=503, version=None, flags=("UO",))), send=", count: 3")
    assert (result.outcome, [s.count for s in mesh.sent]) == ("pass", [3])
    assert result.verdict is not None and result.verdict.evidence[0].rule == (
        "pass: all 3 responses had status 503 (a 5% leak would show with probability 0.143)")


def test_expect_count_with_stale_responses_is_an_error() -> None:
    result, _ = run("{status: 200}", always(Reply(stale=True)), send=", count: 4")
    assert result.outcome == "error" and result.error == (
        "check 'the check': send.count needs all 4 requests served by config version 1, got 0 "
        "(4 from another config, 0 without a record)")


# --- expect_where ---------------------------------------------------------------------------

REFUSED = Reply(status=503, version=None, flags=("UO",), headers={"x-envoy-overloaded": "true"})
BREAKER_WHERE = ('\n    expect_where:\n      - where: {status: 503}\n        expect: {flags: UO, headers: {x-envoy-overloaded: "true"}}'
                 '\n      - where: {flags: "-"}\n        expect: {status: 200}')


def first_admitted(admitted: int, then: Reply = REFUSED) -> Handler:
    """The first ``admitted`` requests answered by the app (200), the rest ``then``."""
    replies = iter([Reply()] * admitted)
    return lambda spec, rng: next(replies, then)


def test_expect_where_judges_only_the_matching_responses() -> None:
    result, mesh = run("{instances: {at_least: 1}}" + BREAKER_WHERE, first_admitted(2), send=", count: 10, concurrency: 10")
    assert result.outcome == "pass" and result.verdict is not None
    assert mesh.sent[0].capture_headers == ("x-envoy-overloaded",)
    flags, header, ok = result.verdict.evidence[1:]
    assert (flags.field, header.field, ok.field) == (
        "flags where status=503", "headers.x-envoy-overloaded where status=503", "status where flags=-")
    assert (flags.n, flags.counts, flags.kind) == (10, {"UO": 8}, "every")
    assert flags.rule == ("pass: all 8 of 10 responses with status=503 had flags UO "
                          "(a 5% leak among them would show with probability 0.337)")
    assert ok.summary == "2 of 10 responses had flags=-; their status: 200 x2"


def test_expect_where_fails_at_the_first_matching_counterexample() -> None:
    replies = iter([REFUSED, Reply(), REFUSED, Reply(status=503, version=None, flags=("UF",))])
    result, _ = run("{instances: {at_least: 1}}" + BREAKER_WHERE, lambda spec, rng: next(replies, REFUSED), send=", count: 10")
    assert result.outcome == "fail" and result.verdict is not None
    flags = result.verdict.evidence[1]
    assert flags.counterexample is not None and (flags.counterexample.index, flags.counterexample.got) == (4, "UF")
    assert flags.rule == "fail: request 4 (status=503) answered flags UF, want every UO"


def test_expect_where_matching_nothing_fails_never_passes_vacuously() -> None:
    result, _ = run("{status: 200}\n    expect_where: [{where: {status: 503}, expect: {flags: UO}}]", always(Reply()))
    assert result.outcome == "fail" and result.verdict is not None
    where = result.verdict.evidence[1]
    assert (where.outcome, where.n, where.counts) == ("fail", 135, {})
    assert where.rule == ("fail: none of 135 responses had status=503, so none showed flags UO; at least one must match "
                          "(check the filter, or the traffic that should produce it)")


def test_expect_where_conditions_all_hold_and_read_echoes_when_they_need_them() -> None:
    expect = ('{status: 200}\n    expect_where: [{where: {status: 200, upstream: {headers: {x-user: alice}}}, '
              'expect: {headers: {x-seen: "1"}}}]')
    alice = Reply(headers={"x-seen": "1"}, echo=Echo("GET", "/a", "reviews:9080", "HTTP/1.1", {"x-user": "alice"}))
    bob = Reply(echo=Echo("GET", "/a", "reviews:9080", "HTTP/1.1", {"x-user": "bob"}))
    result, mesh = run(expect, coin(alice, bob))
    assert result.outcome == "pass" and all(s.include_echo for s in mesh.sent)
    assert result.verdict is not None and result.verdict.evidence[1].field == (
        "headers.x-seen where status=200 and upstream.headers.x-user=alice")


# --- issue 19: claims users could not write -------------------------------------------------

NO_HEALTHY = Reply(status=503, version=None, flags=("UH",), body="no healthy upstream")


def test_expect_body_contains_and_matches_ask_for_bodies_only_when_read() -> None:
    result, mesh = run('{status: 503, body: {contains: "no healthy upstream"}}', always(NO_HEALTHY))
    assert result.outcome == "pass" and {s.capture_body for s in mesh.sent} == {4 * 1024}
    assert result.verdict is not None
    assert result.verdict.evidence[1].rule.startswith("pass: all 135 responses had body contains 'no healthy upstream'")
    result, _ = run('{body: {matches: "^no \\\\w+ upstream$"}}', always(NO_HEALTHY))
    assert result.outcome == "pass"
    _, mesh = run("{status: 503}", always(NO_HEALTHY))
    assert {s.capture_body for s in mesh.sent} == {0}


def test_expect_body_counterexample_shows_the_body() -> None:
    replies = iter([NO_HEALTHY] * 3)
    reset = Reply(status=503, version=None, flags=("UF",), body="upstream connect error or disconnect/reset before headers")
    result, _ = run('{body: {contains: "no healthy upstream"}}', lambda spec, rng: next(replies, reset))
    evidence = failed_with(result, "does not contain 'no healthy upstream' "
                                   "(body 'upstream connect error or disconnect/reset before headers')")
    assert evidence.rule.startswith("fail: request 4 answered body does not contain 'no healthy upstream'")
    result, _ = run('{body: {matches: "reset before"}}', lambda spec, rng: NO_HEALTHY)
    failed_with(result, "does not match /reset before/ (body 'no healthy upstream')")


def test_expect_status_list_every_response_in_the_set_and_each_occurs() -> None:
    mixed = coin(Reply(), Reply(status=503, version=None, flags=("UF",)))
    result, _ = run("{status: [200, 503]}", mixed)
    evidence = only_evidence(result)
    assert result.outcome == "pass" and evidence.summary is not None and evidence.summary.startswith("status: 200 x")
    assert evidence.rule.startswith("pass: all 135 responses had status one of 200, 503, each at least once")
    result, _ = run("{status: [200, 503]}", always(Reply()))
    assert result.outcome == "fail" and only_evidence(result).rule == (
        "fail: status 503 never occurred in 135 responses, want each of 200, 503 at least once")
    replies = iter([Reply(), Reply(status=503, version=None)])
    result, _ = run("{status: [200, 503]}", lambda spec, rng: next(replies, Reply(status=404, version=None)))
    assert failed_with(result, "404").rule == "fail: request 3 answered status 404, want every one of 200, 503"


def test_expect_version_list_with_count() -> None:
    replies = iter([Reply(version="v1"), Reply(version="v2")] * 2)
    result, mesh = run("{version: [v1, v2]}", lambda spec, rng: next(replies), send=", count: 4")
    assert (result.outcome, [s.count for s in mesh.sent]) == ("pass", [4])


def test_expect_instances_exclude_fails_when_the_instance_answered_or_received() -> None:
    three = "services: {reviews: {versions: [v1], replicas: {v1: 3}}}\n"
    spread = lambda spec, rng: Reply(replica=rng.choice([0, 2]))  # noqa: E731
    result, mesh = run("{instances: {exclude: [reviews-v1-1], at_least: 2}}", spread, services=three)
    evidence = only_evidence(result)
    assert result.outcome == "pass" and mesh.drained, evidence.rule
    assert evidence.rule == ("pass: 2 distinct instances answered 135 requests, want >= 2; "
                             "none of 135 requests reached reviews-v1-1 (answered or received)")
    replies = iter([Reply(replica=0)] * 5)
    result, _ = run("{instances: {exclude: [reviews-v1-1]}}", lambda spec, rng: next(replies, Reply(replica=1)), services=three)
    assert failed_with(result, "reviews-v1-1 (answered)").rule == "fail: request 6 reached excluded instance reviews-v1-1 (answered)"
    retried = Reply(replica=0, copies=(Copy(replica=1), Copy(replica=0)))
    result, _ = run("{instances: {exclude: [reviews-v1-1]}}", always(retried), services=three)
    failed_with(result, "reviews-v1-1 (received)")


def test_expect_none_sends_the_count_and_says_no_claim() -> None:
    result, mesh = run("none", always(Reply(status=503, version=None)), send=", count: 7")
    evidence = only_evidence(result)
    assert (result.outcome, [s.count for s in mesh.sent], evidence.field) == ("pass", [7], "expect")
    assert evidence.summary == "no claim: 7 requests sent (status 503 x7)"
    assert evidence.expectation == "no claim (expect: none): traffic sent for its effect only"


def test_expect_received_as_a_fraction_is_a_split() -> None:
    aborted = Reply(status=503, version=None, flags=("FI",))

    def abort_30(spec: SendSpec, rng: random.Random) -> Reply:
        return aborted if rng.random() < 0.3 else Reply()

    # A correct mesh fails this split for some seed with probability at most alpha = 1e-6.
    result, mesh = run("{received: 0.7}", abort_30)
    evidence = only_evidence(result)
    assert (result.outcome, evidence.kind) == ("pass", "fraction") and {"received", "none"} <= set(evidence.expected)
    assert mesh.drained
    result, _ = run("{received: 0.7}", coin(aborted, Reply()))  # 50% reached: 0.2 off, caught with power 0.999
    assert result.outcome == "fail"
    assert run("{received: 1.0}", always(Reply()))[0].outcome == "pass"
    failed_with(run("{received: 1}", always(aborted))[0], "none")


def test_expect_where_sends_until_enough_responses_matched_for_its_power() -> None:
    refused = Reply(status=503, version=None, flags=("UO",))

    def third_refused(spec: SendSpec, rng: random.Random) -> Reply:
        return refused if rng.random() < 1 / 3 else Reply()

    result, mesh = run("{instances: {at_least: 1}}\n    expect_where: [{where: {status: 503}, expect: {flags: UO}}]", third_refused)
    where = result.verdict.evidence[1] if result.verdict else None
    assert result.outcome == "pass" and where is not None and sum(where.counts.values()) >= 135, where
    assert where.power >= 0.999 and where.rule.endswith("would show with probability 0.999)")
    assert sum(s.count for s in mesh.sent) > 135 and len(mesh.sent) <= 10
    result, _ = run("{status: [200, 503]}\n    expect_where: [{where: {status: 503}, expect: {flags: UO}}]\n    max_requests: 200",
                    third_refused)
    where = result.verdict.evidence[1] if result.verdict else None
    assert result.outcome == "inconclusive" and where is not None and where.outcome == "inconclusive"
    matched = sum(where.counts.values())
    assert where.rule.startswith(f"inconclusive: only {matched} of 200 responses (the budget) had status=503; 135 are needed")
