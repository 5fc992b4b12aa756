"""The harness's work directories (a local mesh's, a load run's): each owned by a process, swept when its owner is gone.

A mesh or load run removes its directory when it ends, also on Ctrl-C and SIGTERM. Only a SIGKILL (or a power cut)
can leave one behind; the next mesh to start removes every directory whose owner process is dead,
so leftovers never pile up. Directories without an owner file are not ours to judge and are kept.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from harness.mesh.childproc import process_exists

PREFIX = "mesh-harness-"
OWNER_FILE = "owner.pid"


def make_workdir(purpose: str = "") -> Path:
    """A fresh private directory (``mesh-harness-<purpose>-...``), marked as owned by this process; orphans
    of dead owners are swept first."""
    sweep_orphans(Path(tempfile.gettempdir()))
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{purpose}-" if purpose else PREFIX))
    (path / OWNER_FILE).write_text(str(os.getpid()))
    return path


def sweep_orphans(parent: Path) -> list[Path]:
    """Remove ``mesh-harness-*`` directories under ``parent`` whose owner process no longer exists."""
    removed = []
    for candidate in parent.glob(f"{PREFIX}*"):
        try:
            owner = int((candidate / OWNER_FILE).read_text().strip())
        except (OSError, ValueError):
            continue
        if not process_exists(owner):
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    return removed
