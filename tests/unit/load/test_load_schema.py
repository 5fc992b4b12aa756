"""The load: block of a case and the flags laid over it."""

from __future__ import annotations

import pytest

from harness.errors import ValidationError
from harness.loadspec import LoadSpec, Thresholds
from tests.unit.load.load_builders import CANARY, make_case


def test_load_schema_block_parsed_into_settings() -> None:
    case = make_case(CANARY + "load: {users: 4, spawn_rate: 2, duration: 1m, checks: [split], max_fail_ratio: 0.01, "
                              "p95: 250ms, p99: 1s, min_rps: 50}\n")
    assert case.load == LoadSpec(users=4, spawn_rate=2.0, duration_s=60.0, checks=("split",),
                                 gates=Thresholds(max_fail_ratio=0.01, p95_s=0.25, p99_s=1.0, min_rps=50.0))


def test_load_schema_no_block_no_spec() -> None:
    assert make_case().load is None


@pytest.mark.parametrize(("block", "message"), [
    ("load: {checks: [nope]}", "load.yaml:16: case canary: load.checks[0]: no check named 'nope' in this case (checks: 'split')"),
    ("load: {duration: 2h}", "load.yaml:16: case canary: load.duration: must be more than 0s and at most 3600s (got 7200s)"),
    ("load: {users: 0}", "load.users"),
    ("load: {rps: 5}", "load.rps"),
])
def test_load_schema_bad_block_names_the_field(block: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        make_case(CANARY + block + "\n")
    assert message in str(info.value)


def test_load_schema_flags_override_only_what_is_given() -> None:
    spec = LoadSpec(users=4, duration_s=10.0, gates=Thresholds(p95_s=1.0, min_rps=50.0))
    over = spec.overridden(users=8, p99_s=0.5, min_rps=None)
    assert over == LoadSpec(users=8, duration_s=10.0, gates=Thresholds(p95_s=1.0, p99_s=0.5, min_rps=50.0))
    assert over.rate == 8.0 and spec.overridden(spawn_rate=2.0).rate == 2.0
