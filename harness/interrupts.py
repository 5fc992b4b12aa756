"""SIGTERM unwinds like Ctrl-C wherever a mesh is driven (the CLI, the pytest plugin, test drivers).

A CI timeout or ``kill`` sends SIGTERM, whose default action ends the process at once and leaves
Envoy, the apps and the work dir behind. Raised as a KeyboardInterrupt instead, it runs every
``finally`` and ``close()``; ``Terminated`` lets the CLI still tell it apart (exit 143, not 130).
"""

from __future__ import annotations

from types import FrameType


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised as a KeyboardInterrupt so that it unwinds like Ctrl-C; only the exit code differs."""


def sigterm_as_interrupt(signum: int, frame: FrameType | None) -> None:
    """A SIGTERM handler (``signal.signal(signal.SIGTERM, sigterm_as_interrupt)``) that raises ``Terminated``."""
    raise Terminated
