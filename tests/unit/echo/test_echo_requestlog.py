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
