"""The request log ring buffer: bounds, paging, dropped counts, clear."""

from __future__ import annotations

import pytest

from harness.sample_apps.echo.requestlog import DEFAULT_CAPACITY, RequestLog


def _fill(log: RequestLog, n: int) -> None:
    for i in range(n):
        log.append(float(i), f"id-{i}", "GET", f"/{i}", "reviews:9080", "HTTP/1.1", (("x-a", "1"),))


def test_echo_requestlog_default_capacity_is_at_least_200k() -> None:
    assert DEFAULT_CAPACITY >= 200_000
    assert RequestLog().capacity == DEFAULT_CAPACITY


def test_echo_requestlog_pages_in_order() -> None:
    log = RequestLog(capacity=100)
    _fill(log, 10)
    page = log.since(0, limit=4)
    assert [e.seq for e in page.entries] == [1, 2, 3, 4] and page.next == 4 and page.dropped == 0
    page = log.since(page.next, limit=100)
    assert [e.request_id for e in page.entries] == [f"id-{i}" for i in range(4, 10)] and page.next == 10
    page = log.since(10, limit=100)
    assert list(page.entries) == [] and page.next == 10


def test_echo_requestlog_keeps_newest_and_reports_dropped() -> None:
    log = RequestLog(capacity=5)
    _fill(log, 12)
    page = log.since(0, limit=100)
    assert [e.seq for e in page.entries] == [8, 9, 10, 11, 12]
    assert page.dropped == 7
    assert log.since(9, limit=100).dropped == 0


def test_echo_requestlog_clear_is_not_dropping() -> None:
    log = RequestLog(capacity=5)
    _fill(log, 3)
    log.clear()
    assert log.since(0, limit=10).entries == () and log.since(0, limit=10).next == 3
    _fill(log, 2)
    page = log.since(0, limit=10)
    assert [e.seq for e in page.entries] == [4, 5] and page.dropped == 0


def test_echo_requestlog_shares_identical_header_sets() -> None:
    log = RequestLog(capacity=10)
    a = log.append(0.0, "a", "GET", "/", "h", "HTTP/1.1", (("x", "1"),))
    b = log.append(0.0, "b", "GET", "/", "h", "HTTP/1.1", (("x", "1"),))
    assert a.headers is b.headers
    assert b.to_json()["headers"] == {"x": "1"}


def test_echo_requestlog_rejects_zero_capacity() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RequestLog(capacity=0)


def test_echo_requestlog_cursor_at_a_time_skips_what_came_before() -> None:
    log = RequestLog(capacity=100)
    _fill(log, 10)  # entry seq k was received at time k - 1
    assert log.last_seq_at(4.5) == 5
    assert [e.request_id for e in log.since(log.last_seq_at(4.5), limit=100).entries] == [f"id-{i}" for i in range(5, 10)]
    assert log.last_seq_at(4.0) == 5  # received at exactly that time counts as before
    assert log.last_seq_at(99.0) == 10 and log.since(10, limit=100).entries == []
    assert log.last_seq_at(-1.0) == 0 and len(log.since(0, limit=100).entries) == 10


def test_echo_requestlog_cursor_before_evicted_entries_reports_them_dropped() -> None:
    """When every kept entry came after the time, evicted ones may have too: never skip them silently."""
    log = RequestLog(capacity=5)
    _fill(log, 12)  # seq 8..12 kept (times 7..11), 1..7 evicted
    assert log.since(log.last_seq_at(3.0), limit=100).dropped == 7
    assert log.since(log.last_seq_at(8.5), limit=100).dropped == 0  # seq 9 (time 8) is kept: nothing unknown


def test_echo_requestlog_cursor_after_clear() -> None:
    log = RequestLog(capacity=5)
    _fill(log, 3)
    log.clear()
    assert log.last_seq_at(0.0) == 3 and log.since(3, limit=10).dropped == 0
