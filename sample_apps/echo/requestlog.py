"""What one echo instance received: a bounded ring buffer of requests, read back by sequence number.

The harness joins these entries to its own per-request records by ``x-request-id``, to see what
mirror copies, retries and rewrites looked like on arrival. The buffer keeps the newest
``capacity`` entries (default ``DEFAULT_CAPACITY`` = 200,000, ``--log-capacity`` to change); a
reader asking for entries that were already evicted is told how many it missed (``dropped``),
never silently given a partial log.

Memory: header sets are shared between entries that carry the same headers apart from the
request id (the usual case in a batch), so an entry costs about 300 bytes.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_CAPACITY = 200_000
_MAX_SHARED_HEADER_SETS = 4096  # bound on the table that shares identical header sets between entries

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One received request. ``headers`` are lower-cased (name, value) pairs in arrival order."""

    seq: int
    time: float
    request_id: str
    method: str
    path: str
    host: str
    protocol: str
    headers: Headers

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.time,
            "request_id": self.request_id,
            "method": self.method,
            "path": self.path,
            "host": self.host,
            "protocol": self.protocol,
            "headers": dict(self.headers),
        }


@dataclass(frozen=True)
class LogPage:
    """Entries with ``seq > since``, oldest first; ``next`` is the ``since`` for the following page;
    ``dropped`` counts entries after ``since`` that were evicted before they could be read."""

    entries: Sequence[LogEntry]
    next: int
    dropped: int


class RequestLog:
    """Ring buffer of LogEntry with monotonically increasing ``seq`` (starting at 1, never reused)."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"request log capacity must be at least 1 (got {capacity})")
        self.capacity = capacity
        self._entries: collections.deque[LogEntry] = collections.deque(maxlen=capacity)
        self._last_seq = 0
        self._cleared_through = 0  # entries up to here were cleared on request, not dropped
        self._shared: dict[Headers, Headers] = {}

    def append(self, time: float, request_id: str, method: str, path: str, host: str, protocol: str,
               headers: Headers) -> LogEntry:
        shared = self._shared.setdefault(headers, headers)
        if len(self._shared) > _MAX_SHARED_HEADER_SETS:
            self._shared.clear()
        self._last_seq += 1
        entry = LogEntry(self._last_seq, time, request_id, method, path, host, protocol, shared)
        self._entries.append(entry)
        return entry

    def since(self, seq: int, limit: int) -> LogPage:
        """Up to ``limit`` entries with ``seq`` greater than the given one."""
        if not self._entries:
            return LogPage((), max(seq, self._last_seq), 0)
        first = self._entries[0].seq
        offset = max(0, seq + 1 - first)
        entries = list(itertools.islice(self._entries, offset, offset + limit))
        dropped = max(0, first - 1 - max(seq, self._cleared_through))
        return LogPage(entries, entries[-1].seq if entries else max(seq, self._last_seq), dropped)

    def last_seq_at(self, time: float) -> int:
        """The ``seq`` of the newest entry received at or before ``time``: a cursor for "what came after".

        Scans from the newest entry back, so it costs as many steps as entries came after ``time``
        (a reader asking for its own recent batch does not walk the whole buffer). Entries are
        appended as requests arrive, so their times do not decrease (barring a wall-clock step).
        """
        for entry in reversed(self._entries):
            if entry.time <= time:
                return entry.seq
        # Every kept entry came after ``time``; so may have evicted ones: a cursor before them lets
        # ``since`` report them as dropped rather than skip them.
        return self._cleared_through if self._entries else self._last_seq

    def clear(self) -> None:
        """Forget every entry; sequence numbers keep counting so old cursors stay meaningful."""
        self._entries.clear()
        self._shared.clear()
        self._cleared_through = self._last_seq
