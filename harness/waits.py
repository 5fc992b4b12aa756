"""The one bounded poll: look at a condition until it holds or the time is up.

Every wait of the harness that polls (a pod rollout, an ACK seen through the admin API, an access
log line, a child process's ready line in its log) goes through ``wait_until``, so that none can
spin forever and each gives up with a message saying what it waited for, for how long, what it
last saw and what to do. ``tests/unit/mesh/test_waits_bounded.py`` refuses a hand-rolled
``sleep`` loop anywhere else in ``harness/``.

The condition is looked at once more at or after the deadline, so a condition that becomes true
while the last sleep runs still counts; the number of looks is bounded as well as the time, so a
clock that stands still (a test's fake clock, a suspended VM) cannot make the loop endless. A
condition may raise to fail fast, e.g. when the child process it waits on has exited.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from harness.errors import SyncTimeout

T = TypeVar("T")


def wait_until(condition: Callable[[], T | None], timeout_s: float, poll_s: float, *,
               message: str | Callable[[], str]) -> T:
    """The first truthy value ``condition()`` returns, looking every ``poll_s`` for ``timeout_s``.

    ``SyncTimeout(message)`` when the time is up; ``message`` may be a function, called after the
    last look, so that it can tell what that look saw. Exceptions of ``condition`` pass through.
    """
    deadline = time.monotonic() + timeout_s
    for _ in range(int(timeout_s / poll_s) + 2):  # the bound on looks; the deadline usually ends it first
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            break
        time.sleep(poll_s)
    raise SyncTimeout(message if isinstance(message, str) else message())
