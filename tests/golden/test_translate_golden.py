"""Translator goldens: ``tests/golden/translate/<policy>/{input.yaml, expected.json}``.

Each ``expected.json`` is canonical JSON (sorted keys, 2-space indent) of the translator's own
output, hand-checked against istiod's behaviour (see ``translate/README.md``). A mismatch shows a
unified diff; ``REFRESH_GOLDEN=1`` rewrites the files, and the diff is then reviewed like code.

Besides the exact match, every golden must be loadable by Envoy's own protos (``ParseDict`` with
unknown fields refused) and consistent the way Envoy needs it: every EDS cluster has a
ClusterLoadAssignment, every listener's RDS name exists, and every cluster a route names exists,
unless istiod would leave it missing too (a subset no DestinationRule defines -> 503 NC).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from golden_translate_inputs import golden_cases, load_golden_input, translate_golden
from google.protobuf import json_format
from google.protobuf.message import Message

from harness.istio.model import DestinationRule, ServiceEntry
from harness.istio.semantics import resolve_host
from harness.mesh.local.translate import ANY_PROTO_MODULES, TranslateInput
from harness.mesh.local.translate.names import parse_outbound_cluster

CASES = golden_cases()
MESSAGES: dict[str, type[Message]] = {
    "clusters": cluster_pb2.Cluster,
    "endpoints": endpoint_pb2.ClusterLoadAssignment,
    "listeners": listener_pb2.Listener,
    "routes": route_pb2.RouteConfiguration,
}


def canonical(resources: Any) -> str:
    return json.dumps(resources, indent=2, sort_keys=True) + "\n"


def _translated(case: Path) -> dict[str, Any]:
    return dataclasses.asdict(translate_golden(load_golden_input(case)))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_translate_golden_matches(case: Path) -> None:
    got = canonical(_translated(case))
    expected_file = case / "expected.json"
    if os.environ.get("REFRESH_GOLDEN") == "1":
        expected_file.write_text(got, encoding="utf-8")
    want = expected_file.read_text(encoding="utf-8") if expected_file.exists() else ""
    if got != want:
        diff = "".join(
            difflib.unified_diff(
                want.splitlines(keepends=True), got.splitlines(keepends=True), str(expected_file), "translated"
            )
        )
        pytest.fail(f"translator output differs from {expected_file} (REFRESH_GOLDEN=1 rewrites it):\n{diff}")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_translate_golden_parses_as_envoy_protos(case: Path) -> None:
    for module in ANY_PROTO_MODULES:
        importlib.import_module(module)
    expected = json.loads((case / "expected.json").read_text(encoding="utf-8"))
    for kind, message in MESSAGES.items():
        for resource in expected[kind]:
            json_format.ParseDict(resource, message(), ignore_unknown_fields=False)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_translate_golden_is_consistent(case: Path) -> None:
    inp = load_golden_input(case)
    expected = json.loads((case / "expected.json").read_text(encoding="utf-8"))
    clusters = {c["name"] for c in expected["clusters"]}
    eds = {c["eds_cluster_config"]["service_name"] for c in expected["clusters"] if c["type"] == "EDS"}
    assert eds <= {a["cluster_name"] for a in expected["endpoints"]}, "an EDS cluster has no ClusterLoadAssignment"
    rds = {
        f["typed_config"]["rds"]["route_config_name"]
        for listener in expected["listeners"]
        for chain in listener["filter_chains"]
        for f in chain["filters"]
    }
    assert rds <= {r["name"] for r in expected["routes"]}, "a listener names a RouteConfiguration that is not there"
    for name in _route_clusters(expected["routes"]) - clusters:
        assert _missing_as_istiod(name, inp), f"route names cluster {name} that istiod would have built"


def _route_clusters(route_configs: list[dict[str, Any]]) -> set[str]:
    out: set[str] = set()
    for rc in route_configs:
        for vhost in rc["virtual_hosts"]:
            for route in vhost["routes"]:
                action = route.get("route", {})
                if "cluster" in action:
                    out.add(action["cluster"])
                out.update(w["name"] for w in action.get("weighted_clusters", {}).get("clusters", []))
    return out


def _missing_as_istiod(name: str, inp: TranslateInput) -> bool:
    """A route may name a missing cluster only for an unknown host or port, or a subset no DR defines."""
    parsed = parse_outbound_cluster(name)
    assert parsed is not None, f"route names {name}, which is not an outbound cluster"
    port, subset, fqdn = parsed
    service = next((s for s in inp.topology.services if s.fqdn == fqdn and not s.external), None)
    if (service is None or service.port(port) is None) and fqdn not in _service_entry_hosts(inp):
        return True
    defined = {
        s.name
        for o in inp.objects
        if isinstance(o, DestinationRule) and resolve_host(o.spec.host, o.metadata.namespace) == fqdn
        for s in o.spec.subsets
    }
    return subset != "" and subset not in defined


def _service_entry_hosts(inp: TranslateInput) -> set[str]:
    return {h for o in inp.objects if isinstance(o, ServiceEntry) for h in o.spec.hosts}
