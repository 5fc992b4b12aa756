"""The cached istiod build for tests of ``--control-plane istiod``: skipped where none is built, an error in CI.

CI runs ``mesh-harness istiod build`` before pytest (``.ci/run``), so there a missing build is a broken
set-up, never a reason to pass quietly; a developer without Go gets a skip that names the command.
"""

from __future__ import annotations

import os

import pytest

from harness.errors import MeshError
from harness.mesh.local.istiod.build import IstiodBuild, locate_istiod


def istiod_build() -> IstiodBuild:
    try:
        return locate_istiod()
    except MeshError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must build istiod before the tests (.ci/run): {exc}")
        pytest.skip(str(exc))
