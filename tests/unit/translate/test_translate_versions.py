"""Behaviour switches by Istio release (reference section 7)."""

from __future__ import annotations

import dataclasses

import pytest

from harness.mesh.local.translate.versions import Behaviour, behaviour_for

COLUMNS = tuple(f.name for f in dataclasses.fields(Behaviour))


@pytest.mark.parametrize(
    ("version", "switches"),
    [
        # alt_stat_name, retry_on_503, absolute_fqdn_domain, track_remaining,
        # shadow_host_suffix_disabled, redirect_prefix_rewrite, consistent_hash_retry, dr_merge_by_export_to,
        # proxy_100_continue, panic_threshold_off
        ("1.22", (False, True, False, True, False, False, False, False, False, False)),
        ("1.23", (True, True, False, True, False, False, True, False, True, False)),
        ("1.24", (True, False, False, True, False, False, True, True, True, False)),
        ("1.27", (True, False, True, True, False, False, True, True, True, False)),
        ("1.28.1", (True, False, True, True, True, False, True, True, True, False)),
        ("1.29", (True, False, True, False, True, False, True, True, True, False)),
        ("1.30.3", (True, False, True, False, True, False, True, True, True, False)),
        ("1.31", (True, False, True, False, True, True, True, True, True, True)),
    ],
)
def test_translate_versions_switch_at_the_documented_release(version: str, switches: tuple[bool, ...]) -> None:
    assert behaviour_for(version) == Behaviour(**dict(zip(COLUMNS, switches, strict=True)))


@pytest.mark.parametrize("version", ["", "1", "2.0", "v1.30", "1.x", "1.30.3.4"])
def test_translate_versions_reject_other_forms(version: str) -> None:
    with pytest.raises(ValueError, match=r"istio_version: expected a 1.x release such as '1.30'"):
        behaviour_for(version)
