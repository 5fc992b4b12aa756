"""outlierDetection -> outlier_detection + panic threshold, as istiod 1.30's applyOutlierDetection."""

from __future__ import annotations

from typing import Any

import pytest

from harness.istio.model import OutlierDetection
from harness.mesh.local.translate.outlier import translate_outlier_detection


def outlier(spec: dict[str, Any]) -> dict[str, Any]:
    return translate_outlier_detection(OutlierDetection.model_validate(spec))


def test_translate_outlier_absent_sets_nothing() -> None:
    assert translate_outlier_detection(None) == {}


def test_translate_outlier_empty_block_disables_success_rate_and_panic() -> None:
    assert outlier({}) == {
        "outlier_detection": {"enforcing_success_rate": 0},
        "common_lb_config": {"healthy_panic_threshold": {"value": 0.0}},
    }


def test_translate_outlier_deprecated_consecutive_errors_is_ignored() -> None:
    assert outlier({"consecutiveErrors": 1}) == outlier({})


@pytest.mark.parametrize(("count", "enforcing"), [(0, 0), (1, 100), (9, 100)])
def test_translate_outlier_counts_enforced_only_when_positive(count: int, enforcing: int) -> None:
    got = outlier({"consecutive5xxErrors": count, "consecutiveGatewayErrors": count})["outlier_detection"]
    assert (got["consecutive_5xx"], got["enforcing_consecutive_5xx"]) == (count, enforcing)
    assert (got["consecutive_gateway_failure"], got["enforcing_consecutive_gateway_failure"]) == (count, enforcing)


def test_translate_outlier_times_percent_and_panic_threshold() -> None:
    got = outlier(
        {"interval": "1s", "baseEjectionTime": "3m", "maxEjectionPercent": 0, "minHealthPercent": 50}
    )
    assert got == {
        "outlier_detection": {"enforcing_success_rate": 0, "interval": "1s", "base_ejection_time": "180s"},
        "common_lb_config": {"healthy_panic_threshold": {"value": 50.0}},
    }


def test_translate_outlier_local_origin_split() -> None:
    assert outlier({"splitExternalLocalOriginErrors": True})["outlier_detection"] == {
        "enforcing_success_rate": 0,
        "split_external_local_origin_errors": True,
        "enforcing_local_origin_success_rate": 0,
    }
    got = outlier({"splitExternalLocalOriginErrors": True, "consecutiveLocalOriginFailures": 2})
    assert got["outlier_detection"]["consecutive_local_origin_failure"] == 2
    assert got["outlier_detection"]["enforcing_consecutive_local_origin_failure"] == 100
