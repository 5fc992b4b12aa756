"""``harness.waits.wait_until``: what it returns, when it gives up, and what it says then."""

from __future__ import annotations

import pytest

from harness import waits
from harness.errors import ProcessError, SyncTimeout


class FakeTime:
    """A clock that moves only when the poll sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(waits.time, "monotonic", fake.monotonic)
    monkeypatch.setattr(waits.time, "sleep", fake.sleep)
    return fake


def test_waits_returns_the_first_truthy_value_without_sleeping_after_it(clock: FakeTime) -> None:
    answers = iter([None, [], "ready", "later"])
    assert waits.wait_until(lambda: next(answers), 10.0, 0.5, message="never") == "ready"
    assert clock.sleeps == [0.5, 0.5]


def test_waits_looks_once_more_at_the_deadline_then_raises_the_message(clock: FakeTime) -> None:
    looks: list[float] = []

    def never() -> bool:
        looks.append(clock.now - 100.0)
        return False

    with pytest.raises(SyncTimeout, match=r"^drain: still busy after 1s$"):
        waits.wait_until(never, 1.0, 0.25, message=lambda: f"drain: still busy after {1.0:g}s")
    assert looks == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_waits_message_is_built_after_the_last_look(clock: FakeTime) -> None:
    seen: list[int] = []
    with pytest.raises(SyncTimeout, match=r"last seen 3"):
        waits.wait_until(lambda: seen.append(len(seen) + 1), 0.5, 0.25, message=lambda: f"last seen {seen[-1]}")


def test_waits_a_clock_that_stands_still_still_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    looks: list[int] = []
    monkeypatch.setattr(waits.time, "monotonic", lambda: 0.0)
    monkeypatch.setattr(waits.time, "sleep", lambda s: None)
    with pytest.raises(SyncTimeout, match="stuck"):
        waits.wait_until(lambda: looks.append(1), 1.0, 0.25, message="stuck")
    assert len(looks) == int(1.0 / 0.25) + 2


def test_waits_an_error_of_the_condition_ends_the_wait_at_once(clock: FakeTime) -> None:
    def exited() -> bool:
        raise ProcessError("istiod exited with code 1")

    with pytest.raises(ProcessError, match="exited with code 1"):
        waits.wait_until(exited, 60.0, 0.01, message="never")
    assert clock.sleeps == []
