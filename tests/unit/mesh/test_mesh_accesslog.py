"""The sidecar access log join: parsing Envoy's JSON lines, pairing them with a batch, tailing the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.errors import MeshError
from harness.mesh import accesslog
from harness.mesh.accesslog import (
    AccessLogReader,
    BatchJoin,
    LogEntry,
    Unclaimed,
    decode_lines,
    parse_entry,
    split_lines,
)
from harness.mesh.base import Observation
from harness.mesh.echo_client import observation_from_json
from harness.mesh.local.translate.listeners import ACCESS_LOG_FORMAT


def line(request_id: str | None, code: int = 200, flags: str = "-", host: str | None = "127.0.0.1:1") -> dict[str, object]:
    """An access log line as Envoy's JSON formatter writes it (absent values are null)."""
    return {"request_id": request_id, "response_code": code, "response_flags": flags, "upstream_host": host,
            "duration": 1, "method": "GET"}


def entry(request_id: str | None, code: int = 200, flags: tuple[str, ...] = (), host: str | None = "127.0.0.1:1") -> LogEntry:
    return LogEntry(request_id, code, flags, host)


def record(index: int, request_id: str, status: int = 200) -> dict[str, Any]:
    """An echo app's /forward record (what the join reads before it builds the Observation)."""
    return {"index": index, "request_id": request_id, "status": status, "latency_s": 0.001, "version": "v1"}


def test_accesslog_reads_the_fields_the_listeners_write() -> None:
    """A renamed or re-sourced field in translate/listeners.py would silently leave flags empty."""
    assert ACCESS_LOG_FORMAT[accesslog.REQUEST_ID] == "%REQ(X-REQUEST-ID)%"
    assert ACCESS_LOG_FORMAT[accesslog.RESPONSE_CODE] == "%RESPONSE_CODE%"
    assert ACCESS_LOG_FORMAT[accesslog.RESPONSE_FLAGS] == "%RESPONSE_FLAGS%"
    assert ACCESS_LOG_FORMAT[accesslog.UPSTREAM_HOST] == "%UPSTREAM_HOST%"


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        (line("a"), entry("a")),
        (line("a", 404, "NR", None), entry("a", 404, ("NR",), None)),
        (line("a", 503, "DI,FI", None), entry("a", 503, ("DI", "FI"), None)),
        (line("a", 0, "DC", "-"), entry("a", 0, ("DC",), None)),
        ({"request_id": "-", "response_code": None}, entry(None, 0, (), None)),
        ({}, entry(None, 0, (), None)),
    ],
)
def test_accesslog_parse_entry(raw: dict[str, object], want: LogEntry) -> None:
    assert parse_entry(raw) == want


def test_accesslog_split_lines_keeps_the_unfinished_tail() -> None:
    assert split_lines(b"") == ([], b"")
    assert split_lines(b'{"a":1}\n{"b"') == ([b'{"a":1}'], b'{"b"')
    assert split_lines(b"x\n\ny\n") == ([b"x", b"y"], b"")


def test_accesslog_unclaimed_takes_at_most_what_is_wanted() -> None:
    store = Unclaimed()
    store.add([entry("a", 500), entry("a", 200), entry("b"), entry(None)])
    assert len(store) == 3  # the line without a request id can never be joined
    assert store.take({"a": 1, "c": 4}) == [entry("a", 500)]
    assert store.take({"a": 5, "b": 1}) == [entry("a", 200), entry("b")]
    assert len(store) == 0 and store.take({"a": 1}) == []


def test_accesslog_unclaimed_evicts_the_oldest_beyond_capacity() -> None:
    store = Unclaimed(capacity=2)
    store.add([entry("old"), entry("mid"), entry("new")])
    assert len(store) == 2
    assert store.take({"old": 1, "mid": 1, "new": 1}) == [entry("mid"), entry("new")]


def test_accesslog_join_requires_every_answered_request() -> None:
    batch = [record(0, "a"), record(1, "b", status=404), record(2, "c", status=0), record(3, "", status=0)]
    join = BatchJoin(batch)
    assert join.missing == 2 and join.has_unanswered
    assert dict(join.wants()) == {"a": 1, "b": 1, "c": 1}  # no id: never sent, never joined
    assert join.missing_ids() == ["a", "b"]

    join.add([entry("b", 404, ("NR",), None), entry("zzz")])
    assert join.missing == 1 and dict(join.wants()) == {"a": 1, "c": 1}
    join.add([entry("a", host="127.0.0.1:7"), entry("a", host="127.0.0.1:8")])  # only one is wanted
    assert join.missing == 0 and dict(join.wants()) == {"c": 1}

    joined = join.joined()
    assert [(o.index, o.flags, o.upstream_host) for o in joined] == [
        (0, (), "127.0.0.1:7"), (1, ("NR",), None), (2, (), None), (3, (), None)
    ]
    assert joined[0] == Observation(index=0, request_id="a", status=200, latency_s=0.001, version="v1",
                                    upstream_host="127.0.0.1:7")  # the record read, with its line
    assert joined[2] == observation_from_json(batch[2])  # no line: the record read as it is
    assert all(isinstance(o, Observation) for o in joined)


def test_accesslog_join_pairs_a_shared_request_id_by_status() -> None:
    """With a caller-fixed x-request-id every request of the batch shares it."""
    join = BatchJoin([record(0, "same", 503), record(1, "same", 200), record(2, "same", 503)])
    assert join.missing == 3
    join.add([entry("same", 200, (), "h:2"), entry("same", 503, ("UF",), None), entry("same", 503, ("UO",), None)])
    assert join.missing == 0
    assert [(o.status, o.flags, o.upstream_host) for o in join.joined()] == [
        (503, ("UF",), None), (200, (), "h:2"), (503, ("UO",), None)
    ]


def test_accesslog_reader_tails_from_where_the_sidecar_started(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.write_text(json.dumps(line("before")) + "\n")
    reader = AccessLogReader(path)
    with path.open("a") as log:
        log.write(json.dumps(line("one")) + "\n" + json.dumps(line("two"))[:10])
    assert reader.take({"before": 1, "one": 1, "two": 1}) == [entry("one")]
    with path.open("a") as log:
        log.write(json.dumps(line("two"))[10:] + "\n")
    assert reader.take({"two": 1}) == [entry("two")]
    assert reader.lines == 2


def test_accesslog_reader_waits_for_the_file_and_refuses_garbage(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    reader = AccessLogReader(path)
    assert reader.take({"a": 1}) == []  # Envoy creates the file with its first request
    path.write_text("not json\n")
    with pytest.raises(MeshError, match=r"access log .*access\.log: a line is not JSON .*'not json'"):
        reader.take({"a": 1})


def test_accesslog_decode_names_the_one_bad_line_of_a_batch(tmp_path: Path) -> None:
    """A batch is decoded in one go; when that fails the bad line is found and named."""
    good = json.dumps(line("a")).encode()
    assert decode_lines([good, good], tmp_path / "x.log") == [line("a"), line("a")]
    with pytest.raises(MeshError, match=r"x\.log: a line is not a JSON object: b'\[1\]'"):
        decode_lines([good, b"[1]", good], tmp_path / "x.log")
    with pytest.raises(MeshError, match=r"x\.log: a line is not JSON \(Extra data.*"):
        decode_lines([good + b"," + good], tmp_path / "x.log")  # two objects on one line
    assert decode_lines([], tmp_path / "x.log") == []


def test_accesslog_decode_reads_what_orjson_refuses_as_the_stdlib_does(tmp_path: Path) -> None:
    """orjson decodes the lines; a line it refuses but the standard library reads is read as before."""
    good = json.dumps(line("a")).encode()
    odd = b'{"request_id": "b", "duration": NaN, "bytes": 123456789012345678901234567890}'
    got = decode_lines([good, odd], tmp_path / "x.log")
    assert got[0] == line("a") and got[1]["bytes"] == 123456789012345678901234567890
    assert got[1]["duration"] != got[1]["duration"]  # NaN
