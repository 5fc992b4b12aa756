"""Running kind, docker, istioctl and kubectl: one seam, bounded, with errors that show the tool's words.

``Runner`` is what the cluster, image and install modules call; ``run_command`` is the real one.
Tests pass a fake runner that records command lines and answers from a script, so every command
line the harness would issue is unit tested without the tools.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping, Sequence

from harness.errors import MeshError, ProcessError, SyncTimeout

Runner = Callable[..., str]
"""``runner(argv, *, what, timeout_s, env=None, stdin=None) -> stdout``; raises ProcessError / SyncTimeout."""

_TAIL_CHARS = 4000


def run_command(argv: Sequence[str], *, what: str, timeout_s: float, env: Mapping[str, str] | None = None,
                stdin: str | None = None) -> str:
    """Run ``argv`` to completion within ``timeout_s``; its stdout, or ProcessError with its stderr tail."""
    try:
        done = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=timeout_s,
                              env=dict(env) if env is not None else None, check=False)
    except subprocess.TimeoutExpired as exc:
        raise SyncTimeout(f"{what}: `{' '.join(argv)}` did not finish within {timeout_s:g}s") from exc
    except OSError as exc:
        raise MeshError(f"{what}: cannot run `{argv[0]}`: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout)[-_TAIL_CHARS:].strip()
        raise ProcessError(f"{what}: `{' '.join(argv)}` exited with {done.returncode}:\n{tail}")
    return done.stdout
