"""The fixtures as another repository gets them: only installed (the ``pytest11`` entry points), a test
file in a directory of its own, pytest run there on the local mesh."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.envoy

USER_TEST = '''
from harness.topology import DEFAULT_TOPOLOGY


def test_reviews_answers_through_the_clients_sidecar(mesh, send):
    mesh.deploy(DEFAULT_TOPOLOGY)
    observations = send("http://reviews:9080/", count=20)
    assert len(observations) == 20
    assert {o.status for o in observations} == {200}
    assert {o.version for o in observations} <= {"v1", "v2"}
'''


def test_fixtures_mesh_and_send_work_in_another_repository(tmp_path: Path) -> None:
    project = tmp_path / "elsewhere"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")  # its own rootdir: nothing of this repository's set-up
    (project / "test_reviews.py").write_text(USER_TEST)
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_reviews.py"],
                          cwd=project, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
