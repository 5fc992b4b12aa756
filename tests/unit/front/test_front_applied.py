"""``applied(mesh, case)``: deploy then apply, the token to the block, revert whatever ends it, on the fake mesh."""

from __future__ import annotations

import pytest

from harness.applied import applied
from harness.errors import SyncTimeout
from harness.mesh.fake import FakeMesh, draw
from tests.unit.front.front_builders import make_case, make_case_text, make_check

CASE = make_case(make_case_text(make_check("c", "{status: 200}")))


def test_applied_deploys_applies_and_reverts_with_the_token_of_the_apply() -> None:
    mesh = FakeMesh(draw(), seed=1)
    with applied(mesh, CASE) as token:
        assert mesh.deployed == [CASE.topology] and mesh.applied == [CASE.objects] and mesh.reverted == []
    assert mesh.reverted == [token] and token.version == 1


@pytest.mark.parametrize("stop", [RuntimeError("a check broke"), KeyboardInterrupt()])
def test_applied_reverts_when_the_block_raises_or_is_interrupted(stop: BaseException) -> None:
    mesh = FakeMesh(draw(), seed=1)
    with pytest.raises(type(stop)), applied(mesh, CASE):
        raise stop
    assert len(mesh.reverted) == 1


def test_applied_a_failed_apply_raises_before_the_block_and_reverts_nothing() -> None:
    mesh = FakeMesh(fail_apply=SyncTimeout("node client: RDS still at version 0, want 1 after 5s"))
    with pytest.raises(SyncTimeout), applied(mesh, CASE):
        pytest.fail("the block ran")  # pragma: no cover
    assert mesh.deployed == [CASE.topology] and mesh.reverted == []
