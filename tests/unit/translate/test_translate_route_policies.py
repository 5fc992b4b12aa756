"""Route-policy translation details the goldens do not pin: edge inputs, precedence rules, wiring."""

from __future__ import annotations

from typing import Any

import pytest

from harness.istio.model import DestinationRule, Headers, HTTPFaultInjection, HTTPRetry, IstioObject, VirtualService
from harness.mesh.local.translate import TranslateInput, translate
from harness.mesh.local.translate.faults import translate_fault
from harness.mesh.local.translate.headers import translate_headers
from harness.mesh.local.translate.inputs import Resource
from harness.mesh.local.translate.retries import translate_retries
from harness.mesh.local.translate.versions import behaviour_for
from harness.topology import DEFAULT_TOPOLOGY

B130 = behaviour_for("1.30")
V1 = {"destination": {"host": "reviews", "subset": "v1"}}
V2 = {"destination": {"host": "reviews", "subset": "v2"}}
PREVIOUS_HOSTS = "envoy.retry_host_predicates.previous_hosts"


def vs(*rules: dict[str, Any]) -> VirtualService:
    return VirtualService.model_validate(
        {
            "apiVersion": "networking.istio.io/v1",
            "metadata": {"name": "reviews"},
            "spec": {"hosts": ["reviews"], "http": list(rules)},
        }
    )


def dr(traffic_policy: dict[str, Any] | None = None) -> DestinationRule:
    spec: dict[str, Any] = {
        "host": "reviews",
        "subsets": [{"name": "v1", "labels": {"version": "v1"}}, {"name": "v2", "labels": {"version": "v2"}}],
    }
    if traffic_policy is not None:
        spec["trafficPolicy"] = traffic_policy
    return DestinationRule.model_validate(
        {"apiVersion": "networking.istio.io/v1", "metadata": {"name": "reviews"}, "spec": spec}
    )


def routes_9080(objects: list[IstioObject], istio_version: str = "1.30") -> list[Resource]:
    """The routes of the reviews vhost on port 9080."""
    inp = TranslateInput(DEFAULT_TOPOLOGY, DEFAULT_TOPOLOGY.clients[0], {}, objects, 1, istio_version=istio_version)
    (rc,) = [r for r in translate(inp).routes if r["name"] == "9080"]
    (vhost,) = [v for v in rc["virtual_hosts"] if v["name"].startswith("reviews.")]
    return list(vhost["routes"])


# --- retries -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_on", "want_on", "want_codes"),
    [
        (" 5xx , ,503,", "5xx,retriable-status-codes", [503]),  # parts trimmed, empty parts dropped
        ("999,reset", "999,reset", None),  # not a registered status: passed on as a token
        (
            "+503",
            ",retriable-status-codes",
            [503],
        ),  # Atoi takes a sign; retry.go appends to "" (Envoy skips the empty token)
        ("5_03", "5_03", None),  # ... but no underscores
        ("gateway-error", "gateway-error", None),  # own retryOn drops the default codes, too
    ],
)
def test_translate_retries_split_retry_on_as_retry_go(
    retry_on: str, want_on: str, want_codes: list[int] | None
) -> None:
    policy = translate_retries(HTTPRetry(attempts=1, retry_on=retry_on), behaviour_for("1.23"))
    assert policy is not None
    assert (policy["retry_on"], policy.get("retriable_status_codes")) == (want_on, want_codes)


def test_translate_retries_consistent_hash_drops_previous_hosts_unless_asked_for() -> None:
    assert "retry_host_predicate" not in (translate_retries(None, B130, consistent_hash=True) or {})
    asked = translate_retries(HTTPRetry(attempts=2, retry_ignore_previous_hosts=True), B130, consistent_hash=True)
    assert asked is not None and asked["retry_host_predicate"][0]["name"] == PREVIOUS_HOSTS
    assert translate_retries(HTTPRetry(attempts=-1), B130) is None


# --- faults --------------------------------------------------------------------------------------


def test_translate_fault_without_a_usable_abort_or_delay_is_an_empty_filter_config() -> None:
    fault = HTTPFaultInjection.model_validate({"abort": {"percentage": {"value": 10}}, "delay": {"percent": 5}})
    assert translate_fault(fault) == {"@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}


def test_translate_fault_percentage_truncates_like_go() -> None:
    fault = HTTPFaultInjection.model_validate({"abort": {"httpStatus": 500, "percentage": {"value": 0.57}}})
    # 0.57 * 10000 is 5699.999... in binary floating point; Go's uint32() truncates it to 5699.
    assert translate_fault(fault)["abort"]["percentage"] == {"numerator": 5699, "denominator": "MILLION"}


# --- headers and authority ------------------------------------------------------------------------


def test_translate_headers_set_authority_wins_over_add_and_is_never_a_header() -> None:
    ops = translate_headers(
        Headers.model_validate(
            {
                "request": {"add": {"Host": "added", "x-a": "1"}, "set": {":authority": "set"}},
                "response": {"set": {":authority": "ignored", "host": "ignored"}, "remove": ["HOST", ":status", "x-b"]},
            }
        )
    )
    assert ops.authority == "set"
    assert [h["header"]["key"] for h in ops.request_headers_to_add] == ["x-a"]
    assert ops.response_headers_to_add == () and ops.response_headers_to_remove == ("x-b",)


def test_translate_authority_precedence_rewrite_then_route_then_destination() -> None:
    dest_auth = {**V1, "headers": {"request": {"set": {"host": "dest"}}}}
    rules = [
        {
            "match": [{"uri": {"prefix": "/a"}}],
            "route": [dest_auth],
            "rewrite": {"authority": "rewrite"},
            "headers": {"request": {"set": {"host": "route"}}},
        },
        {
            "match": [{"uri": {"prefix": "/b"}}],
            "route": [dest_auth],
            "headers": {"request": {"add": {"host": "route"}}},
        },
        {"match": [{"uri": {"prefix": "/c"}}], "route": [dest_auth]},
    ]
    got = [r["route"]["host_rewrite_literal"] for r in routes_9080([dr(), vs(*rules)])]
    assert got == ["rewrite", "route", "dest"]


# --- redirect --------------------------------------------------------------------------------------


def test_translate_redirect_with_an_unmapped_code_has_no_action_as_in_istiod() -> None:
    (route,) = routes_9080([vs({"redirect": {"uri": "/x", "redirectCode": 304}})])
    assert not {"route", "redirect", "direct_response"} & route.keys()


def test_translate_redirect_prefix_rewrite_from_1_31() -> None:
    (route,) = routes_9080([vs({"redirect": {"uri": "/ignored", "prefixRewrite": "/new"}})], istio_version="1.31")
    assert route["redirect"] == {"prefix_rewrite": "/new", "response_code": "MOVED_PERMANENTLY"}


# --- consistent-hash wiring (hash policies come from lb.py) ----------------------------------------


def test_translate_route_hash_policy_and_retry_default_follow_the_destination_rule() -> None:
    rules: list[dict[str, Any]] = [
        {"match": [{"uri": {"prefix": "/single"}}], "route": [V1]},
        {"route": [{**V1, "weight": 50}, {**V2, "weight": 50}]},
    ]
    single, weighted = routes_9080([dr({"loadBalancer": {"consistentHash": {"httpHeaderName": "x-user"}}}), vs(*rules)])
    want = [{"header": {"header_name": "x-user"}}]
    assert single["route"]["hash_policy"] == want
    assert "retry_host_predicate" not in single["route"]["retry_policy"]
    assert weighted["route"]["hash_policy"] == want * 2
    assert weighted["route"]["retry_policy"]["retry_host_predicate"][0]["name"] == PREVIOUS_HOSTS


def test_translate_default_route_gets_the_hash_policy_but_keeps_previous_hosts() -> None:
    (route,) = routes_9080([dr({"loadBalancer": {"consistentHash": {"useSourceIp": True}}})])
    assert route["route"]["hash_policy"] == [{"connection_properties": {"source_ip": True}}]
    assert route["route"]["retry_policy"]["retry_host_predicate"][0]["name"] == PREVIOUS_HOSTS
