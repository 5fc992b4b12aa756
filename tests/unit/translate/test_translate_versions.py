"""Behaviour switches by Istio release (reference section 7)."""

from __future__ import annotations

import pytest

from harness.mesh.local.translate.versions import Behaviour, behaviour_for


@pytest.mark.parametrize(
    ("version", "want"),
    [
        ("1.22", Behaviour(alt_stat_name=False, retry_on_503=True, absolute_fqdn_domain=False, track_remaining=True)),
        ("1.23", Behaviour(alt_stat_name=True, retry_on_503=True, absolute_fqdn_domain=False, track_remaining=True)),
        ("1.24", Behaviour(alt_stat_name=True, retry_on_503=False, absolute_fqdn_domain=False, track_remaining=True)),
        ("1.27", Behaviour(alt_stat_name=True, retry_on_503=False, absolute_fqdn_domain=True, track_remaining=True)),
        ("1.28.1", Behaviour(alt_stat_name=True, retry_on_503=False, absolute_fqdn_domain=True, track_remaining=True)),
        ("1.29", Behaviour(alt_stat_name=True, retry_on_503=False, absolute_fqdn_domain=True, track_remaining=False)),
        ("1.30.3", Behaviour(alt_stat_name=True, retry_on_503=False, absolute_fqdn_domain=True, track_remaining=False)),
    ],
)
def test_translate_versions_switch_at_the_documented_release(version: str, want: Behaviour) -> None:
    assert behaviour_for(version) == want


@pytest.mark.parametrize("version", ["", "1", "2.0", "v1.30", "1.x", "1.30.3.4"])
def test_translate_versions_reject_other_forms(version: str) -> None:
    with pytest.raises(ValueError, match=r"istio_version: expected a 1.x release such as '1.30'"):
        behaviour_for(version)
