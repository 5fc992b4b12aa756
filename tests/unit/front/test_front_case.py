"""Valid cases load into typed Cases with every field carried through; the JSON Schema is valid and admits the shipped cases."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from harness.case import case_json_schema, load_case_file
from harness.cases_discovery import bundled_cases_dir, case_files
from harness.errors import ValidationError
from harness.expect import status, version
from harness.settings import StatOverrides, StatSettings
from harness.topology import DEFAULT_TOPOLOGY, Client, Service, ServicePort
from tests.unit.front.front_builders import make_case, make_case_text, make_check

FULL = """\
name: full
about: every field
services:
  reviews: {versions: [v1, v2, v3], replicas: {v2: 3}}
config:
  - apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: reviews}
    spec:
      hosts: [reviews]
      http: [{route: [{destination: {host: reviews}}]}]
checks:
  - name: post with headers
    about: explained
    send:
      url: "http://reviews:9080/items?x=1"
      method: post
      headers: {user: rui, x-b: "2"}
      body: '{"a": 1}'
      concurrency: 4
      rate: 50
      protocol: http
      new_connection: true
      timeout: 1.5s
      from: client
    expect: {version: {v1: 0.6, v2: 0.3, v3: 0.1}, status: 200}
    alpha: 1.0e-4
    delta: 0.02
    power: 0.99
    max_requests: 50000
    leak: 0.01
  - name: relative
    send: {url: "http://reviews.default.svc.cluster.local:9080/"}
    expect: {status: {200: 0.99, 503: 0.01}}
    relative_delta: 0.5
"""


def test_case_round_trips_every_field() -> None:
    case = make_case(FULL)
    assert (case.name, case.about, case.file, case.line) == ("full", "every field", "case.yaml", 1)
    assert case.topology.services == (Service("reviews", versions=("v1", "v2", "v3"), replicas=(("v2", 3),)),)
    assert case.topology.clients == (Client(),)
    assert [o.key for o in case.objects] == [("VirtualService", "default", "reviews")]
    first, second = case.checks
    assert (first.name, first.line, second.line) == ("post with headers", 13, 32)
    send = first.send
    assert (send.url, send.method, send.headers, send.body) == (
        "http://reviews:9080/items?x=1", "POST", (("user", "rui"), ("x-b", "2")), b'{"a": 1}')
    assert (send.concurrency, send.rate, send.protocol, send.new_connection, send.timeout_s, send.client) == (
        4, 50, "http", True, 1.5, "client")
    assert first.expectations == (version({"v1": 0.6, "v2": 0.3, "v3": 0.1}), status("200"))
    assert first.overrides == StatOverrides(alpha=1e-4, delta=0.02, power=0.99, max_requests=50000, leak=0.01)
    assert second.expectations == (status({"200": 0.99, "503": 0.01}),)
    assert second.overrides.over(StatSettings()) == StatSettings(relative_delta=0.5)


def test_case_defaults_to_the_default_topology_and_send_defaults() -> None:
    case = make_case('name: d\nchecks:\n  - name: c\n    send: {url: "http://reviews:9080/"}\n    expect: {version: none}\n')
    assert case.topology == DEFAULT_TOPOLOGY and case.objects == ()
    send = case.checks[0].send
    assert (send.method, send.headers, send.body, send.concurrency, send.rate, send.client) == ("GET", (), b"", 16, None, "client")
    assert case.checks[0].expectations == (version("none"),)


def test_case_overrides_delta_clears_a_default_relative_delta() -> None:
    base = StatSettings(relative_delta=0.5)
    assert StatOverrides(delta=0.1).over(base) == StatSettings(delta=0.1, relative_delta=None)
    assert StatOverrides(alpha=1e-3).over(base) == StatSettings(alpha=1e-3, relative_delta=0.5)


def test_case_file_with_a_trailing_separator_and_a_referenced_manifest(tmp_path: Path) -> None:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "dr.yaml").write_text(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec: {host: reviews}\n")
    path = tmp_path / "c.yaml"
    path.write_text('name: c\nconfig: [{file: manifests/dr.yaml}]\nchecks:\n'
                    '  - {name: x, send: {url: "http://reviews:9080/"}, expect: {status: 200}}\n---\n')
    (case,) = load_case_file(path)
    assert [o.key for o in case.objects] == [("DestinationRule", "default", "reviews")]


def test_case_json_schema_is_valid_and_admits_every_shipped_case() -> None:
    schema = case_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    files = case_files([bundled_cases_dir()])
    assert len(files) >= 7
    for path in files:
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            assert list(validator.iter_errors(doc)) == [], path
    assert not validator.is_valid({"name": "x", "checks": [{"name": "c", "send": {"url": "u", "concurency": 1}, "expect": {}}]})


EXPECT_KEYS = {"version", "status", "grpc_status", "flags", "headers", "upstream", "body", "latency", "attempts", "mirror",
               "received", "stats", "same_instance", "instances"}


def test_case_json_schema_documents_every_expect_key_and_the_new_send_and_topology_fields() -> None:
    schema = case_json_schema()
    defs = schema["$defs"]
    expect = defs["ExpectModel"]["properties"]
    assert set(expect) == EXPECT_KEYS
    assert all(expect[k].get("description") for k in EXPECT_KEYS)
    assert {"count", "headers_cycle"} <= set(defs["SendModel"]["properties"])
    assert {"ports", "knobs"} <= set(defs["ServiceModel"]["properties"]) and "clients" in schema["properties"]
    assert "p99.9" in defs["LatencyModel"]["properties"]
    assert {"wait", "expect_where"} <= set(defs["CheckModel"]["properties"])
    assert set(defs["WhereModel"]["properties"]) == {"where", "expect"}
    assert defs["CheckModel"]["properties"]["wait"]["anyOf"][0] == {"type": "string", "examples": ["200ms", "1.5s"]}
    validator = jsonschema.Draft202012Validator(schema)
    doc = yaml.safe_load(TOPOLOGY_CASE)
    assert list(validator.iter_errors(doc)) == []


TOPOLOGY_CASE = """\
name: topo
services:
  reviews:
    versions: [v1, v2]
    replicas: {v1: 2}
    ports: [{name: http, number: 80}]
    knobs: {v2: {status: "500"}, reviews-v1-1: {delay: 500ms}}
clients: [{name: client}, {name: tester, labels: {app: tester}, namespace: other}]
checks:
  - name: every key
    send: {url: "http://reviews:80/", from: tester, count: 20, headers_cycle: {x-user: [a, b]}}
    expect:
      status: 503
      grpc_status: none
      flags: UO
      headers: {x-envoy-overloaded: "true", x-envoy-upstream-service-time: null}
      upstream: {path: /, host: "reviews:80", method: GET, headers: {x-user: true}}
      latency: {at_least: 200ms, below: 10s}
      attempts: 1
      mirror: {service: reviews, version: v2, fraction: 0, host: "reviews:80"}
      received: none
      stats: {"upstream_rq_pending_overflow|upstream_rq_active_overflow": {at_least: 1}}
      same_instance: true
      instances: {at_most: 1}
"""


def test_case_topology_fields_and_every_expect_key_load() -> None:
    case = make_case(TOPOLOGY_CASE)
    (reviews,) = case.topology.services
    assert reviews.ports == (ServicePort("http", 80),)
    assert reviews.knobs == (("reviews-v1-1", (("delay", "500ms"),)), ("v2", (("status", "500"),)))
    assert reviews.instance_knobs("v1", "reviews-v1-1") == {"delay": "500ms"}
    assert [(c.name, c.labels, c.namespace) for c in case.topology.clients] == [
        ("client", (("app", "client"),), "default"), ("tester", (("app", "tester"),), "other")]
    (check,) = case.checks
    assert (check.count, check.headers_cycle, check.send.client) == (20, (("x-user", ("a", "b")),), "tester")
    assert [e.field for e in check.expectations] == [
        "status", "grpc_status", "flags", "headers.x-envoy-overloaded", "headers.x-envoy-upstream-service-time",
        "upstream.path", "upstream.host", "upstream.method", "upstream.headers.x-user", "latency", "attempts", "mirror",
        "received", "stats", "same_instance", "instances"]


def test_case_wait_and_expect_where_load_into_the_check() -> None:
    case = make_case(
        "name: w\nchecks:\n  - name: c\n    send: {url: \"http://reviews:9080/\", count: 10}\n    wait: 1.5s\n"
        "    expect: {instances: {at_least: 1}}\n"
        "    expect_where: [{where: {status: 503, flags: UO}, expect: {version: none, received: none}}]\n"
    )
    (check,) = case.checks
    assert check.wait_s == 1.5
    assert [e.field for e in check.expectations] == [
        "instances", "version where status=503 and flags=UO", "received where status=503 and flags=UO"]


def test_case_topology_and_istio_rule_issues_come_in_one_pass() -> None:
    # The schema is valid; an unknown version (topology) and weights summing to 0 (istiod's rules, applied
    # after loading) used to come one after the other.
    config = """\
  - apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: reviews}
    spec:
      hosts: [reviews]
      http: [{route: [{destination: {host: reviews}, weight: 0}, {destination: {host: reviews}, weight: 0}]}]
"""
    with pytest.raises(ValidationError) as raised:
        make_case(make_case_text(make_check("c", "{version: v3}"), config=config))
    messages = [str(i) for i in raised.value.issues]
    assert len(messages) == 2
    assert "checks[0].expect.version: no service in this case's topology has version 'v3'" in messages[0]
    assert "spec.http[0].route: the weights of several destinations must sum to more than 0" in messages[1]
