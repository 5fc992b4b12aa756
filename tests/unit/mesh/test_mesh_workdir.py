"""Work directories of dead owners are swept; live owners' and foreign directories are kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from harness.mesh.local.workdir import OWNER_FILE, PREFIX, sweep_orphans


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_sweep_removes_only_directories_whose_owner_is_dead(tmp_path: Path) -> None:
    dead, alive, foreign, other = (tmp_path / f"{PREFIX}{n}" for n in ("dead", "alive", "foreign", "x"))
    for d in (dead, alive, foreign):
        d.mkdir()
    (dead / OWNER_FILE).write_text(str(_dead_pid()))
    (alive / OWNER_FILE).write_text(str(os.getpid()))
    other.write_text("a file, not a work dir")

    assert sweep_orphans(tmp_path) == [dead]
    assert not dead.exists() and alive.exists() and foreign.exists() and other.exists()
