"""The plan and record formats between the harness and its Locust process (no Locust imported here)."""

from __future__ import annotations

import json

import pytest

from harness.locust.wire import (
    LoadPlan,
    PlannedRequest,
    Record,
    RecordBatch,
    WorkerLedger,
    WorkerShare,
    decode_records,
    encode_record,
    plan_for_url,
    read_ledger,
    restamped,
)


def test_load_wire_record_round_trip_keeps_every_field() -> None:
    record = Record(check=1, started=12.5, latency_s=0.004, status=200, request_id="id-1", service="reviews",
                    version="v2", instance="reviews-v2-0", config_version="3", headers={"location": "/x"})
    line = encode_record(record)
    assert line.endswith("\n") and line.count("\n") == 1
    assert decode_records([line], "r.jsonl") == [record]


def test_load_wire_record_leaves_out_empty_fields() -> None:
    line = encode_record(Record(check=0, started=1.0, latency_s=0.5, status=0, error="connection refused"))
    assert json.loads(line) == {"c": 0, "t": 1.0, "l": 0.5, "s": 0, "e": "connection refused"}


def test_load_wire_blank_lines_are_skipped() -> None:
    line = encode_record(Record(check=0, started=1.0, latency_s=0.5, status=200))
    assert len(decode_records(["", line, "  \n"], "r.jsonl")) == 1


@pytest.mark.parametrize(("line", "why"), [
    ('{"c":0,"t":1,"l":0.1}', "missing s"),
    ('{"c":0,"t":1,"l":0.1,"s":"200"}', "c and s must be integers"),
    ('{"c":0,"t":1,"l":0.1,"s":200,"v":2}', "v must be a string"),
    ('{"c":0,"t":1,"l":0.1,"s":200,"h":{"a":1}}', "h must map header names to strings"),
    ('{"c":0,"t":1,', "not a load record"),
])
def test_load_wire_bad_record_names_file_and_line(line: str, why: str) -> None:
    good = encode_record(Record(check=0, started=1.0, latency_s=0.5, status=200))
    with pytest.raises(ValueError, match=r"^r\.jsonl:2: not a load record") as info:
        decode_records([good, line], "r.jsonl")
    assert why in str(info.value)


def test_load_wire_failed_counts_as_locust_does() -> None:
    def failed(status: int) -> bool:
        return Record(check=0, started=0.0, latency_s=0.0, status=status).failed

    assert [failed(s) for s in (0, 200, 301, 399, 400, 503)] == [True, False, False, False, True, True]


def test_load_wire_plan_round_trip() -> None:
    plan = LoadPlan((PlannedRequest("split", "POST", "/a?x=1", "reviews:9080", (("x-user", "jason"),), "body", 5.0,
                                    (("x-key", ("a", "b")),), ("location",)),))
    assert LoadPlan.from_json(plan.to_json()) == plan


@pytest.mark.parametrize(("text", "message"), [
    ('{"version": 99, "requests": []}', "plan version 99"),
    ('{"version": 1}', "not a load plan"),
    ("[]", "not a load plan"),
    ("nonsense", "not a load plan"),
    ('{"version": 1, "requests": []}', "at least one request"),
    ('{"version": 1, "requests": [{"check": "c", "authority": "a", "headers_cycle": [["x", []]]}]}', "at least one value"),
])
def test_load_wire_bad_plan_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LoadPlan.from_json(text)


def test_load_wire_headers_cycle_over_requests_and_host_first() -> None:
    planned = PlannedRequest("c", "GET", "/", "reviews:9080", (("x-user", "jason"),),
                             headers_cycle=(("x-key", ("a", "b", "c")),))
    assert [planned.headers_for(i)["x-key"] for i in range(5)] == ["a", "b", "c", "a", "b"]
    assert list(planned.headers_for(0)) == ["Host", "x-user", "x-key"]
    assert planned.headers_for(0)["Host"] == "reviews:9080"


def test_load_wire_plan_for_url_keeps_authority_and_query() -> None:
    (planned,) = plan_for_url("http://reviews:9080/p?q=1", method="post").requests
    assert (planned.method, planned.path, planned.authority) == ("POST", "/p?q=1", "reviews:9080")
    assert plan_for_url("http://reviews").requests[0].path == "/"


def test_load_wire_plan_for_url_refuses_other_urls() -> None:
    with pytest.raises(ValueError, match='expected a URL like "http://reviews:9080/path"'):
        plan_for_url("reviews:9080")


def test_load_wire_batch_round_trips_through_a_message() -> None:
    batch = RecordBatch("worker-1", encode_record(Record(check=0, started=1.0, latency_s=0.1, status=200)), final=True)
    assert RecordBatch.from_message(batch.to_message()) == batch


@pytest.mark.parametrize("data", [None, "x", {"lines": ""}, {"worker": "w", "lines": 3}])
def test_load_wire_batch_refuses_what_is_not_one(data: object) -> None:
    with pytest.raises(ValueError, match=r"^not a record batch \(want worker, lines, final; got "):
        RecordBatch.from_message(data)


def test_load_wire_ledger_tells_finished_workers_from_lost_ones() -> None:
    two = encode_record(Record(check=0, started=1.0, latency_s=0.1, status=200)) * 2
    ledger = WorkerLedger()
    ledger.connected("host_aaa")
    ledger.connected("host_bbb")
    ledger.connected("host_ccc")
    ledger.received("host_aaa", RecordBatch("worker-1", "", final=False))  # the hello batch names it
    ledger.received("host_aaa", RecordBatch("worker-1", two, final=False))
    ledger.received("host_aaa", RecordBatch("worker-1", two, final=True))
    ledger.received("host_bbb", RecordBatch("worker-2", two, final=False))  # died before its final batch
    assert not ledger.all_finished()
    shares = read_ledger(ledger.to_json(), "workers.json")
    assert shares == (WorkerShare("worker-1", 4, True), WorkerShare("worker-2", 2, False),
                      WorkerShare("host_ccc", 0, False))  # never said its name: Locust's client id


def test_load_wire_ledger_all_finished_once_every_connected_worker_sent_its_final_batch() -> None:
    ledger = WorkerLedger()
    assert ledger.all_finished()  # nobody connected: nothing to wait for
    ledger.connected("a")
    ledger.received("b", RecordBatch("worker-2", "", final=True))
    assert not ledger.all_finished()
    ledger.received("a", RecordBatch("worker-1", "", final=True))
    assert ledger.all_finished()


@pytest.mark.parametrize("text", ["", "{}", '{"workers": [{"name": "w"}]}', "[1]"])
def test_load_wire_ledger_unreadable_names_the_file(text: str) -> None:
    with pytest.raises(ValueError, match=r"^workers.json: not a worker ledger \("):
        read_ledger(text, "workers.json")


def test_load_wire_plan_carries_the_masters_config_version() -> None:
    plan = plan_for_url("http://reviews:9080/")
    assert LoadPlan.from_json(plan.to_json()).config_version is None
    stamped = LoadPlan(plan.requests, "7")
    assert LoadPlan.from_json(stamped.to_json()) == stamped


@pytest.mark.parametrize(("own", "plan", "seen", "want"), [
    ("3", "7", "3", "7"),     # the worker's mesh applied the case as 3; the master's as 7
    ("3", "7", "2", "2"),     # an older config on the worker's mesh stays stale
    ("3", "7", None, None),   # Envoy answered itself: nothing to restamp
    (None, "7", "3", "3"),    # a local worker shares the master's mesh
    ("3", None, "3", "3"),    # a hand-written plan names no version
])
def test_load_wire_restamped_maps_only_the_workers_applied_version(own: str | None, plan: str | None, seen: str | None,
                                                                   want: str | None) -> None:
    record = Record(check=0, started=1.0, latency_s=0.1, status=200, config_version=seen)
    assert restamped(record, own, plan).config_version == want


def test_load_wire_grpc_record_keeps_its_status_and_fails_as_locust_counts_it() -> None:
    unavailable = Record(check=0, started=1.0, latency_s=0.1, status=200, grpc_status=14, error="UNAVAILABLE: x")
    ok = Record(check=0, started=1.0, latency_s=0.1, status=200, grpc_status=0)
    assert decode_records([encode_record(unavailable), encode_record(ok)], "r.jsonl") == [unavailable, ok]
    assert unavailable.failed and not ok.failed
    with pytest.raises(ValueError, match=r"g must be an integer gRPC status \(got 'OK'\)"):
        decode_records(['{"c":0,"t":1,"l":0.1,"s":200,"g":"OK"}'], "r.jsonl")


def test_load_wire_plan_keeps_the_protocol_and_refuses_an_unknown_one() -> None:
    plan = LoadPlan((PlannedRequest("grpc", "POST", "/echo.Echo/Call", "reviews:7070", protocol="grpc"),))
    assert LoadPlan.from_json(plan.to_json()) == plan and plan.protocol == "grpc"
    text = plan.to_json().replace('"grpc"}', '"h3"}')
    with pytest.raises(ValueError, match=r"protocol must be one of http, grpc \(got 'h3'\)"):
        LoadPlan.from_json(text)
