"""Loading YAML into the model: realistic manifests round-trip, and every bad field is reported at once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from harness.errors import CaseSyntaxError, ValidationError
from harness.istio.load import load_manifest, load_object, load_objects
from harness.istio.model import DestinationRule, VirtualService
from harness.istio.validate import validate_objects
from harness.yamlsource import load_documents

MANIFESTS = Path(__file__).parent / "manifests"


@pytest.mark.parametrize("path", sorted(MANIFESTS.glob("*.yaml")), ids=lambda p: p.stem)
def test_load_realistic_manifest_has_no_issues(path: Path) -> None:
    objs = load_manifest(path)
    assert objs
    findings = validate_objects(objs)
    assert findings.errors == [] and findings.warnings == []
    for obj in objs:
        assert obj.source is not None and obj.source.file == str(path)


def test_load_bookinfo_reviews_fields() -> None:
    vs, dr = load_manifest(MANIFESTS / "bookinfo-reviews.yaml")
    assert isinstance(vs, VirtualService) and isinstance(dr, DestinationRule)
    jason = vs.spec.http[0]
    assert jason.match[0].headers["end-user"].exact == "jason"
    assert jason.route[0].destination.subset == "v2"
    assert [s.name for s in dr.spec.subsets] == ["v1", "v2", "v3"]
    assert dr.spec.subsets[0].labels == {"version": "v1"}
    assert vs.source is not None and vs.source.line == 2 and dr.source is not None and dr.source.line == 23


def test_load_canary_keeps_metadata_and_ignores_server_fields() -> None:
    (vs,) = load_manifest(MANIFESTS / "canary.yaml")
    assert isinstance(vs, VirtualService)
    assert vs.api_version == "networking.istio.io/v1beta1"
    assert vs.metadata.labels == {"app": "reviews"}
    assert vs.metadata.creation_timestamp == datetime(2024, 5, 1, 12, tzinfo=UTC)
    weights = [(d.destination.subset, d.weight) for d in vs.spec.http[0].route]
    assert weights == [("v1", 90), ("v2", 10)]
    assert vs.spec.http[0].route[1].headers is not None
    assert vs.spec.http[0].route[0].destination.port is not None
    assert vs.spec.http[0].route[0].destination.port.number == 9080


def test_load_durations_and_percentages_become_numbers() -> None:
    (faults,) = load_manifest(MANIFESTS / "faults.yaml")
    (retries,) = load_manifest(MANIFESTS / "retries.yaml")
    assert isinstance(faults, VirtualService) and isinstance(retries, VirtualService)
    fault = faults.spec.http[1].fault
    assert fault is not None and fault.abort is not None and fault.delay is not None
    assert fault.abort.http_status == 500 and fault.abort.percentage is not None
    assert fault.abort.percentage.value == 10.0
    assert fault.delay.fixed_delay == 0.5
    route = retries.spec.http[0]
    assert route.timeout == 10.0 and route.retries is not None
    assert route.retries.per_try_timeout == 2.0 and route.retries.backoff == 0.025


def test_load_destination_rule_sub_messages() -> None:
    (cb,) = load_manifest(MANIFESTS / "connection-pool.yaml")
    (od,) = load_manifest(MANIFESTS / "outlier-detection.yaml")
    assert isinstance(cb, DestinationRule) and isinstance(od, DestinationRule)
    pool = cb.spec.traffic_policy.connection_pool if cb.spec.traffic_policy else None
    assert pool is not None and pool.http is not None and pool.tcp is not None
    assert (pool.tcp.max_connections, pool.http.http1_max_pending_requests, pool.http.idle_timeout) == (1, 1, 3600.0)
    outlier = od.spec.traffic_policy.outlier_detection if od.spec.traffic_policy else None
    assert outlier is not None
    assert (outlier.consecutive_5xx_errors, outlier.base_ejection_time, outlier.max_ejection_percent) == (1, 180.0, 100)


@pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha3"])
def test_load_accepts_each_api_version(version: str) -> None:
    text = f"apiVersion: networking.istio.io/{version}\nkind: DestinationRule\nmetadata: {{name: r}}\nspec: {{host: r}}\n"
    (doc,) = load_documents(text, "dr.yaml")
    assert load_object(doc).api_version == f"networking.istio.io/{version}"


def test_load_collects_issues_of_every_document() -> None:
    text = (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a}\n"
        "spec: {hosts: [a], http: [{route: [{destination: {host: a}, weight: x}]}]}\n"
        "---\n"
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: b}\nspec: {hots: b}\n"
    )
    with pytest.raises(ValidationError) as info:
        load_objects(load_documents(text, "two.yaml"))
    where = [(i.obj, i.path, i.line) for i in info.value.issues]
    assert ("VirtualService/a", "spec.http[0].route[0].weight", 4) in where
    assert ("DestinationRule/b", "spec.hots", 9) in where
    assert ("DestinationRule/b", "spec.host", 9) not in where  # the misspelling is one mistake, told once


def test_load_manifest_missing_file_is_a_syntax_error(tmp_path: Path) -> None:
    with pytest.raises(CaseSyntaxError, match="cannot read"):
        load_manifest(tmp_path / "absent.yaml")


def test_load_object_rejects_a_non_mapping_document() -> None:
    (doc,) = load_documents("- just\n- a list\n", "list.yaml")
    with pytest.raises(ValidationError, match="expected a Kubernetes object"):
        load_object(doc)
