"""Properties of the whole output that the LocalMesh relies on."""

from __future__ import annotations

import dataclasses
import json

from harness.istio.model import DestinationRule, VirtualService
from harness.mesh.local.translate import Endpoint, TranslateInput, translate
from harness.mesh.local.translate.endpoints import selects, translate_load_assignment
from harness.sample_apps.echo.fields import CONFIG_VERSION_HEADER
from harness.topology import DEFAULT_TOPOLOGY

OBJECTS = [
    DestinationRule.model_validate(
        {
            "apiVersion": "networking.istio.io/v1",
            "metadata": {"name": "reviews"},
            "spec": {"host": "reviews", "subsets": [{"name": "v1", "labels": {"version": "v1"}}]},
        }
    ),
    VirtualService.model_validate(
        {
            "apiVersion": "networking.istio.io/v1",
            "metadata": {"name": "reviews"},
            "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}]},
        }
    ),
]


def make_input(config_version: int) -> TranslateInput:
    return TranslateInput(
        DEFAULT_TOPOLOGY, DEFAULT_TOPOLOGY.clients[0], {}, OBJECTS, config_version, access_log_path="/tmp/a.log"
    )


def test_translate_listeners_are_identical_across_config_versions() -> None:
    a, b = translate(make_input(1)), translate(make_input(2))
    assert json.dumps(a.listeners, sort_keys=True) == json.dumps(b.listeners, sort_keys=True)
    assert a.clusters == b.clusters and a.endpoints == b.endpoints


def test_translate_only_the_version_header_changes_with_config_version() -> None:
    a = json.dumps(dataclasses.asdict(translate(make_input(41))), sort_keys=True)
    b = json.dumps(dataclasses.asdict(translate(make_input(42))), sort_keys=True)
    stamp = f'"key": "{CONFIG_VERSION_HEADER}", "value": "%s"'
    assert a.count(stamp % 41) > 0
    assert a.replace(stamp % 41, stamp % 42) == b


def test_translate_every_route_carries_the_version_header() -> None:
    for rc in translate(make_input(7)).routes:
        for vhost in rc["virtual_hosts"]:
            for route in vhost["routes"]:
                assert route["response_headers_to_add"] == [
                    {
                        "header": {"key": CONFIG_VERSION_HEADER, "value": "7"},
                        "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                    }
                ]


def test_translate_endpoints_select_label_supersets() -> None:
    v1 = Endpoint("127.0.0.1", 1, {"app": "r", "version": "v1"}, "r-v1-0")
    v2 = Endpoint("127.0.0.1", 2, {"app": "r", "version": "v2", "zone": "a"}, "r-v2-0")
    assert selects({}, v1.labels) and selects({"version": "v2", "zone": "a"}, v2.labels)
    assert not selects({"version": "v2", "zone": "b"}, v2.labels)
    cla = translate_load_assignment("c", [v2, v1], {"app": "r"})
    assert [e["endpoint"]["hostname"] for e in cla["endpoints"][0]["lb_endpoints"]] == ["r-v1-0", "r-v2-0"]
    assert translate_load_assignment("c", [v1], {"version": "v3"}) == {"cluster_name": "c", "endpoints": []}
