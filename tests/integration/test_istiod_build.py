"""The istiod that ``mesh-harness istiod build`` cached (CI builds it before pytest): a real pilot-discovery
stamped with the label the build recorded. Skipped, with the command to run, where nothing is cached
(an error in CI, which builds it first: tests/istiod.py)."""

from __future__ import annotations

import subprocess

from tests.istiod import istiod_build


def test_cached_istiod_is_the_build_it_says() -> None:
    build = istiod_build()
    done = subprocess.run([str(build.binary), "version", "-s"], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"client version: {build.label}"
    assert build.label.endswith(f"-dev+{build.module_version[-12:]}") or build.label == build.requested
    assert "nil-multicluster" in build.patches  # every Istio the default can name has the code it fixes
