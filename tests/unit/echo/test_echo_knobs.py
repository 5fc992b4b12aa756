"""Knob parsing and per-request resolution (pure)."""

from __future__ import annotations

import random

import grpc
import pytest

from harness.sample_apps.echo import knobs
from harness.sample_apps.echo.knobs import AttemptCounter, FailFirst, KnobError, Knobs


@pytest.mark.parametrize(
    ("text", "codes", "cumulative"),
    [
        ("503", (503,), (1.0,)),
        (" 200 ", (200,), (1.0,)),
        ("500:0.3,200:0.7", (500, 200), (0.3, 1.0)),
        ("500:0.25, 503:0.25, 200:0.5", (500, 503, 200), (0.25, 0.5, 1.0)),
        ("200:1", (200,), (1.0,)),
    ],
)
def test_echo_knobs_status_parses(text: str, codes: tuple[int, ...], cumulative: tuple[float, ...]) -> None:
    spec = knobs.parse_status(text)
    assert spec.codes == codes
    assert spec.cumulative == pytest.approx(cumulative)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "expected a code 200-599"),
        ("abc", "expected a code 200-599"),
        ("99", "expected a code 200-599"),
        ("600", "expected a code 200-599"),
        ("500:0.3,200:0.6", "these sum to 0.9"),
        ("500:0.3,200", "expected a code 200-599"),
        ("500:x,200:1", "expected a code 200-599"),
        ("500:-0.5,200:1.5", "expected a code 200-599"),
        ("500:nan,200:1", "expected a code 200-599"),
    ],
)
def test_echo_knobs_status_rejects(text: str, fragment: str) -> None:
    with pytest.raises(KnobError, match=r"bad value for echo knob 'status'") as err:
        knobs.parse_status(text)
    assert fragment in str(err.value)


def test_echo_knobs_status_choose_follows_probabilities() -> None:
    spec = knobs.parse_status("500:0.3,200:0.7")
    rng = random.Random(1234)  # fixed seed: a deterministic draw sequence, not a statistical test
    draws = [spec.choose(rng) for _ in range(1000)]
    assert set(draws) == {500, 200}
    assert spec.choose(rng) in (500, 200)
    assert knobs.parse_status("503").choose(rng) == 503


@pytest.mark.parametrize(("text", "seconds"), [("250ms", 0.25), ("1.5s", 1.5), ("0s", 0.0), (".5s", 0.5), ("600s", 600.0)])
def test_echo_knobs_delay_parses(text: str, seconds: float) -> None:
    assert knobs.parse_delay(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["10", "1m", "-1s", "abc", "", "601s", "1.5 h"])
def test_echo_knobs_delay_rejects(text: str) -> None:
    with pytest.raises(KnobError, match=r"echo knob 'delay'.*expected a duration with unit ms or s"):
        knobs.parse_delay(text)


@pytest.mark.parametrize(("text", "want"), [("2", FailFirst(2, 503)), ("0", FailFirst(0, 503)), ("3:500", FailFirst(3, 500))])
def test_echo_knobs_fail_first_parses(text: str, want: FailFirst) -> None:
    assert knobs.parse_fail_first(text) == want


@pytest.mark.parametrize("text", ["", "x", "-1", "2:", "2:abc", "2:100", "2:503:1"])
def test_echo_knobs_fail_first_rejects(text: str) -> None:
    with pytest.raises(KnobError, match=r"echo knob 'fail-first'.*N:CODE"):
        knobs.parse_fail_first(text)


@pytest.mark.parametrize(
    ("text", "code"),
    [("UNAVAILABLE", grpc.StatusCode.UNAVAILABLE), ("unavailable", grpc.StatusCode.UNAVAILABLE),
     ("14", grpc.StatusCode.UNAVAILABLE), ("0", grpc.StatusCode.OK), ("INTERNAL", grpc.StatusCode.INTERNAL)],
)
def test_echo_knobs_grpc_status_parses(text: str, code: grpc.StatusCode) -> None:
    assert knobs.parse_grpc_status(text) is code


@pytest.mark.parametrize("text", ["17", "NOPE", "", "-1"])
def test_echo_knobs_grpc_status_rejects(text: str) -> None:
    with pytest.raises(KnobError, match=r"echo knob 'grpc-status'.*status name"):
        knobs.parse_grpc_status(text)


def test_echo_knobs_header_wins_over_query_over_default() -> None:
    defaults = Knobs.from_flags("500", "1s", None, None)
    both = knobs.resolve_http({"x-echo-status": "503"}, {"status": "502"}, defaults)
    assert both.status is not None and both.status.codes == (503,)
    query = knobs.resolve_http({}, {"status": "502", "delay": "5ms"}, defaults)
    assert query.status is not None and query.status.codes == (502,)
    assert query.delay_s == pytest.approx(0.005)
    default = knobs.resolve_http({}, {}, defaults)
    assert default.status is not None and default.status.codes == (500,) and default.delay_s == 1.0


def test_echo_knobs_refuse_the_other_protocols_knob() -> None:
    with pytest.raises(KnobError, match=r"'grpc-status' \('14'\) does not apply to HTTP requests; use 'status'"):
        knobs.resolve_http({}, {"grpc-status": "14"}, Knobs())
    with pytest.raises(KnobError, match=r"'status' \('503'\) does not apply to gRPC calls; use 'grpc-status'"):
        knobs.resolve_grpc({"x-echo-status": "503"}, Knobs())
    grpc_knobs = knobs.resolve_grpc({"x-echo-grpc-status": "INTERNAL"}, Knobs(delay_s=0.1))
    assert grpc_knobs.grpc_status is grpc.StatusCode.INTERNAL and grpc_knobs.delay_s == 0.1


def test_echo_knobs_fail_first_counts_per_request_id() -> None:
    counter = AttemptCounter()
    two = Knobs(fail_first=FailFirst(2))
    assert [knobs.is_failing_attempt(two, "a", counter) for _ in range(4)] == [True, True, False, False]
    assert knobs.is_failing_attempt(two, "b", counter) is True
    assert knobs.is_failing_attempt(Knobs(), "c", counter) is False
    with pytest.raises(KnobError, match="needs an x-request-id header"):
        knobs.is_failing_attempt(two, "", counter)


def test_echo_knobs_attempt_counter_is_bounded() -> None:
    counter = AttemptCounter(capacity=3)
    for rid in ("a", "b", "c"):
        counter.next_attempt(rid)
    assert counter.next_attempt("a") == 2  # refreshes "a": "b" is now the oldest
    counter.next_attempt("d")  # evicts "b"
    assert counter.next_attempt("b") == 1
    assert counter.next_attempt("a") == 3
