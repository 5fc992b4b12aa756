"""A case's apply and revert seconds are recorded on each of its checks and written to the result document.

The benchmark splits a suite's wall time into checks, policy time and what config changes cost;
these two numbers are the last part. Deterministic: a fake mesh moves a fake clock.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.errors import SyncTimeout
from harness.istio.model import IstioObject
from harness.mesh.base import SyncToken
from harness.mesh.fake import FAKE_INFO, FakeMesh, draw
from harness.result import RunResult, encode
from harness.runner import run_case
from harness.settings import StatSettings
from tests.unit.front.front_builders import make_case, make_case_text, make_check

SETTINGS = StatSettings()


class TimedMesh(FakeMesh):
    """A fake mesh whose apply takes 0.25 s and whose revert takes 0.125 s of a manual clock."""

    def __init__(self) -> None:
        super().__init__(draw({"v2": 1.0}))
        self.now = 100.0

    def clock(self) -> float:
        return self.now

    def apply(self, objects: Sequence[IstioObject]) -> SyncToken:
        self.now += 0.25
        return super().apply(objects)

    def revert(self, token: SyncToken) -> None:
        self.now += 0.125
        super().revert(token)


def test_runner_records_the_case_apply_and_revert_seconds_on_each_check() -> None:
    mesh = TimedMesh()
    case = make_case(make_case_text(make_check("one", "{version: v2}"), make_check("two", "{version: v2}")))
    results = run_case(mesh, case, SETTINGS, clock=mesh.clock)
    assert [(r.outcome, r.case_apply_s, r.case_revert_s) for r in results] == [("pass", 0.25, 0.125)] * 2
    doc = encode(RunResult(FAKE_INFO, SETTINGS, 1.0, tuple(results)))
    assert [(c["case_apply_s"], c["case_revert_s"]) for c in doc["checks"]] == [(0.25, 0.125)] * 2


def test_runner_case_seconds_are_null_when_the_apply_fails() -> None:
    mesh = FakeMesh(fail_apply=SyncTimeout("node client.default: RDS still at 0, want 1 after 5s"))
    (result,) = run_case(mesh, make_case(make_case_text(make_check("one", "{version: v2}"))), SETTINGS)
    assert (result.outcome, result.case_apply_s, result.case_revert_s) == ("error", None, None)
    (entry,) = encode(RunResult(FAKE_INFO, SETTINGS, 1.0, (result,)))["checks"]
    assert (entry["case_apply_s"], entry["case_revert_s"]) == (None, None)
