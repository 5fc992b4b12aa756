"""Every manifest the kube mesh renders, validated against the Kubernetes schemas of the pinned node images
(kubernetes-validate, strict: an unknown field fails), and every Istio object it writes against the
harness's own typed Istio model."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import kubernetes_validate
import pytest

from harness.case import load_case_file
from harness.cases_discovery import bundled_cases_dir, case_files
from harness.istio.load import load_object
from harness.istio.manifest import to_manifest
from harness.mesh.kube.apply import plan
from harness.mesh.kube.manifests import RenderOptions, namespaces, render_namespace, render_topology
from harness.mesh.kube.versions import KIND_NODE_IMAGES
from harness.mesh.sentinels import sentinel_service_entry, sentinels
from harness.topology import DEFAULT_TOPOLOGY, Client, Service, ServicePort, Topology
from harness.yamlsource import Document

RICH = Topology(
    services=(Service("reviews", versions=("v1", "v2", "v3"), replicas=(("v2", 3),),
                      knobs=(("v1", (("delay", "100ms"),)), ("reviews-v2-1", (("status", "503"),)))),
              Service("ratings", versions=("v1",), ports=(ServicePort("http", 80),), namespace="other")),
    clients=(Client(), Client("tester", labels=(("app", "tester"),), namespace="other")),
)
OPTIONS = [RenderOptions(image="mesh-harness-echo:0123456789ab", run_id="r1"),
           RenderOptions(image="registry.example/mesh-harness-echo:0123456789ab", run_id="r2",
                         namespace_prefix="mh-gw0", revision="canary")]


def manifests(topology: Topology, opts: RenderOptions) -> list[dict[str, Any]]:
    return [render_namespace(n, opts) for n in namespaces(topology)] + render_topology(topology, opts)


@pytest.mark.parametrize("kubernetes", sorted(KIND_NODE_IMAGES))
def test_kube_manifests_valid_for_pinned_kubernetes(kubernetes: str) -> None:
    """Every shape the renderer has (knobs, replicas, several namespaces and clients, prefix, revision) and
    the default topology, against each pinned version's schemas."""
    external = load_case_file(bundled_cases_dir() / "service-entry.yaml")[0].topology
    with_gateway = replace(OPTIONS[0], gateway_ip="10.96.0.2")
    rendered = (manifests(RICH, OPTIONS[1]) + manifests(DEFAULT_TOPOLOGY, OPTIONS[0])
                + manifests(external, with_gateway))
    unique = {json.dumps(m, sort_keys=True): m for m in rendered}  # the schema is per kind: one of each shape
    for manifest in unique.values():
        kubernetes_validate.validate(manifest, f"{kubernetes}.0", strict=True)


def test_kube_manifests_shape() -> None:
    opts = OPTIONS[1]
    rendered = {(m["kind"], m["metadata"]["name"]): m for m in manifests(RICH, opts)}
    assert sorted(rendered) == sorted([
        ("Namespace", "mh-gw0-default"), ("Namespace", "mh-gw0-other"), ("Service", "reviews"), ("Service", "ratings"),
        ("Deployment", "reviews-v1-0"), ("Deployment", "reviews-v2-0"), ("Deployment", "reviews-v2-1"),
        ("Deployment", "reviews-v2-2"), ("Deployment", "reviews-v3-0"), ("Deployment", "ratings-v1-0"),
        ("Deployment", "client"), ("Deployment", "tester")])
    assert rendered["Namespace", "mh-gw0-default"]["metadata"]["labels"] == {"mesh-harness.io/run": "r2",
                                                                             "istio.io/rev": "canary"}
    assert rendered["Service", "reviews"]["spec"]["ports"] == [
        {"name": "http", "port": 9080, "protocol": "TCP", "targetPort": "http"},
        {"name": "grpc", "port": 7070, "protocol": "TCP", "targetPort": "grpc"}]
    bad = rendered["Deployment", "reviews-v2-1"]["spec"]["template"]
    assert bad["metadata"]["labels"]["version"] == "v2" and bad["metadata"]["labels"]["istio.io/rev"] == "canary"
    assert bad["metadata"]["labels"]["sidecar.istio.io/inject"] == "true"
    args = bad["spec"]["containers"][0]["args"]
    assert args[-2:] == ["--status", "503"] and "--bind" in args
    assert "--delay" in rendered["Deployment", "reviews-v1-0"]["spec"]["template"]["spec"]["containers"][0]["args"]
    client = rendered["Deployment", "tester"]["spec"]["template"]
    proxy = json.loads(client["metadata"]["annotations"]["proxy.istio.io/config"])
    assert proxy["proxyStatsMatcher"]["inclusionPrefixes"][0] == "cluster.outbound"
    assert client["metadata"]["labels"]["app"] == "tester"
    assert rendered["Deployment", "tester"]["metadata"]["namespace"] == "mh-gw0-other"


def _istio_roundtrip(manifest: dict[str, Any]) -> None:
    """The dict written to the API server loads back into the typed model without an issue."""
    load_object(Document(manifest, "written.yaml", 1, {}))


def test_kube_sentinels_are_valid_istio() -> None:
    """kubernetes-validate carries no Istio CRD schemas, and the typed model covers VirtualService and
    DestinationRule, so the ServiceEntry sentinel is pinned by shape only."""
    for manifest in sentinels("default", 7, {"a": "b"}):
        _istio_roundtrip(manifest)
    entry = sentinel_service_entry("default", 7, {"a": "b"})
    assert entry["spec"]["hosts"] == ["default.sync.mesh-harness.internal", "v7.default.sync.mesh-harness.internal"]
    assert entry["spec"]["exportTo"] == ["."]


def test_kube_every_bundled_case_object_round_trips() -> None:
    seen = 0
    for path in case_files([bundled_cases_dir()]):
        for case in load_case_file(path):
            for obj in case.objects:
                manifest = to_manifest(obj, "mh-ns", {"mesh-harness.io/run": "r"})
                again = load_object(Document(json.loads(json.dumps(manifest)), "written.yaml", 1, {}))
                assert again.model_dump(exclude={"source", "metadata"}) == obj.model_dump(exclude={"source", "metadata"})
                assert manifest["metadata"]["namespace"] == "mh-ns"
                seen += 1
    assert seen > 20


def test_kube_plan_applies_changed_and_deletes_missing() -> None:
    objects = [o for o in load_case_file(bundled_cases_dir() / "canary.yaml")[0].objects]
    dr, vs = sorted(objects, key=lambda o: o.kind)
    current = {dr.key: dr, vs.key: vs}
    assert plan(current, current) == plan({}, {}) == type(plan({}, {}))((), ())
    assert plan(current, {dr.key: dr}).delete == (vs,)
    assert plan({}, current).apply == (dr, vs)


def bundled_topologies() -> list[tuple[str, Topology]]:
    """(case name, topology) of every bundled case, plus the default topology."""
    return [("(default)", DEFAULT_TOPOLOGY)] + [(case.name, case.topology) for path in case_files([bundled_cases_dir()])
                                                 for case in load_case_file(path)]


def test_kube_deployment_selector_is_one_per_name_across_every_bundled_case() -> None:
    """``spec.selector`` is immutable: a Deployment re-applied by the next case with another selector is a 422."""
    selectors: dict[str, dict[str, str]] = {}
    seen: dict[str, str] = {}
    for case, topology in bundled_topologies():
        for manifest in render_topology(topology, OPTIONS[0]):
            if manifest["kind"] != "Deployment":
                continue
            name, selector = manifest["metadata"]["name"], manifest["spec"]["selector"]["matchLabels"]
            assert selectors.setdefault(name, selector) == selector, (
                f"Deployment {name}: {case} selects {selector}, {seen[name]} selected {selectors[name]}")
            seen.setdefault(name, case)
            labels = manifest["spec"]["template"]["metadata"]["labels"]
            assert selector.items() <= labels.items()
    assert selectors["client"] == {"mesh-harness.io/instance": "client"} and len(seen) > 5
