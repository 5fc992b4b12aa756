"""External apps and ServiceEntry cases on a cluster (pure): the app runs without a sidecar, the case's
loopback endpoint becomes the app's Service, and the client pods capture DNS so the host resolves."""

from __future__ import annotations

import json

from harness.case import load_case_file
from harness.cases_discovery import bundled_cases_dir
from harness.istio.manifest import to_manifest
from harness.mesh.kube.external import point_at_external_app
from harness.mesh.kube.manifests import RenderOptions, render_topology

OPTS = RenderOptions(image="mesh-harness-echo:0123456789ab", run_id="r1", namespace_prefix="mh-gw0")


def test_kube_service_entry_endpoints_reach_the_external_apps_service() -> None:
    static, dns = load_case_file(bundled_cases_dir() / "service-entry.yaml")
    written = {}
    for case in (static, dns):
        entry = next(o for o in case.objects if o.kind == "ServiceEntry")
        manifest = to_manifest(entry, "mh-gw0-default", {})
        written[case.name] = point_at_external_app(manifest, case.topology, "mh-gw0-default", {"api": "10.96.0.40"})
        assert manifest["spec"]["endpoints"] == [{"address": "127.0.0.1"}]  # the input is not changed
    assert written["service-entry-static"]["spec"]["endpoints"] == [{"address": "10.96.0.40"}]
    assert written["service-entry-dns-retries"]["spec"]["endpoints"] == [
        {"address": "api.mh-gw0-default.svc.cluster.local"}]


def test_kube_other_objects_and_foreign_endpoints_are_kept() -> None:
    case = load_case_file(bundled_cases_dir() / "service-entry.yaml")[0]
    vs = to_manifest(next(o for o in case.objects if o.kind == "VirtualService"), "ns", {})
    assert point_at_external_app(vs, case.topology, "ns", {"api": "10.96.0.40"}) == vs
    entry = to_manifest(next(o for o in case.objects if o.kind == "ServiceEntry"), "ns", {})
    entry["spec"]["endpoints"] = [{"address": "192.0.2.7"}]
    assert point_at_external_app(entry, case.topology, "ns", {"api": "10.96.0.40"}) == entry
    assert point_at_external_app(entry, case.topology, "ns", {}) == entry  # no Service yet: nothing to point at


def test_kube_external_app_runs_without_a_sidecar_and_clients_capture_dns() -> None:
    case = load_case_file(bundled_cases_dir() / "service-entry.yaml")[0]
    rendered = {m["metadata"]["name"]: m for m in render_topology(case.topology, OPTS) if m["kind"] == "Deployment"}
    api = rendered["api-v1-0"]["spec"]["template"]["metadata"]
    assert api["labels"]["sidecar.istio.io/inject"] == "false" and api["annotations"] == {}
    reviews = rendered["reviews-v1-0"]["spec"]["template"]["metadata"]
    assert reviews["labels"]["sidecar.istio.io/inject"] == "true"
    client = json.loads(rendered["client"]["spec"]["template"]["metadata"]["annotations"]["proxy.istio.io/config"])
    assert client["proxyMetadata"] == {"ISTIO_META_DNS_CAPTURE": "true"}
