"""Match translation details that the goldens do not pin one by one: catch-all truth table, per-proxy filters."""

from __future__ import annotations

from typing import Any

import pytest

from harness.istio.model import HTTPMatchRequest
from harness.mesh.local.translate.matches import applies_to_proxy, is_catch_all, translate_match


def match(**fields: Any) -> HTTPMatchRequest:
    return HTTPMatchRequest.model_validate(fields)


@pytest.mark.parametrize(
    ("route_match", "want"),
    [
        ({"prefix": "/"}, True),
        ({"prefix": "/", "case_sensitive": False}, True),
        ({"safe_regex": {"regex": ".*"}}, True),
        ({"prefix": "/api"}, False),
        ({"path": "/"}, False),
        ({"safe_regex": {"regex": "/.*"}}, False),
        ({"prefix": "/", "headers": [{"name": "a", "present_match": True}]}, False),
        ({"prefix": "/", "query_parameters": [{"name": "a", "present_match": True}]}, False),
    ],
)
def test_translate_matches_catch_all_truth_table(route_match: dict[str, Any], want: bool) -> None:
    assert is_catch_all(route_match) is want


def test_translate_matches_no_match_block_is_bare_prefix() -> None:
    assert translate_match(None) == {"prefix": "/"}
    assert translate_match(match()) == {"prefix": "/", "case_sensitive": True}


def test_translate_matches_empty_uri_and_present_forms() -> None:
    got = translate_match(match(uri={}, headers={"a": {}, "b": {"regex": "*"}}))
    assert got["prefix"] == "/"
    assert got["headers"] == [{"name": "a", "present_match": True}, {"name": "b", "present_match": True}]


def test_translate_matches_headers_and_without_headers_sort_together() -> None:
    got = translate_match(match(headers={"b": {"exact": "1"}}, withoutHeaders={"a": {"prefix": "x"}}))
    assert [h["name"] for h in got["headers"]] == ["a", "b"]
    assert got["headers"][0] == {
        "name": "a",
        "string_match": {"prefix": "x"},
        "invert_match": True,
        "treat_missing_header_as_empty": True,
    }


LABELS = {"app": "client", "version": "v1"}


@pytest.mark.parametrize(
    ("fields", "port", "namespace", "want"),
    [
        ({}, 9080, "default", True),
        ({"port": 9080}, 9080, "default", True),
        ({"port": 7070}, 9080, "default", False),
        ({"sourceLabels": {"app": "client"}}, 9080, "default", True),
        ({"sourceLabels": {"app": "client", "version": "v2"}}, 9080, "default", False),
        ({"sourceNamespace": "default"}, 9080, "default", True),
        ({"sourceNamespace": "other"}, 9080, "default", False),
        ({"gateways": ["mesh"]}, 9080, "default", True),
        ({"gateways": ["my-gateway"]}, 9080, "default", False),
        # Match-level gateways replace the source checks, as in istiod's sourceMatchHTTP.
        ({"gateways": ["mesh"], "sourceLabels": {"app": "other"}}, 9080, "default", True),
    ],
)
def test_translate_matches_applies_to_proxy(fields: dict[str, Any], port: int, namespace: str, want: bool) -> None:
    assert applies_to_proxy(match(**fields), port, LABELS, namespace) is want
