"""Go duration strings as istiod accepts them, and the proto-JSON form Envoy wants."""

from __future__ import annotations

import pytest

from harness.istio.duration import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("0.5s", 0.5),
        ("500ms", 0.5),
        ("1m", 60.0),
        ("1h30m", 5400.0),
        ("100us", 1e-4),
        ("100µs", 1e-4),
        ("250ns", 2.5e-7),
        ("1.5h", 5400.0),
        (".5s", 0.5),
        ("0", 0.0),
        ("-2s", -2.0),
        ("1m30s", 90.0),
    ],
)
def test_duration_parses_go_forms(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["5x", "", "s", "1", "1.5", "1 s", "1sec", "--1s", "1s2"])
def test_duration_rejects_other_forms_naming_the_accepted_ones(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a valid duration; use a number with a unit \(ns, us, ms, s, m, h\)"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.5, "0.5s"), (2, "2s"), (0, "0s"), (0.001, "0.001s"), (90.25, "90.25s"), (1e-9, "0.000000001s"), (-1.5, "-1.5s")],
)
def test_duration_formats_for_envoy(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_duration_round_trips_through_envoy_form() -> None:
    for text in ("1ms", "2s", "1h30m", "333ms", "100us"):
        seconds = parse_duration(text)
        assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)
