"""The client sidecar's access log: read its JSON lines, and join them to the requests of a batch.

Why: Envoy's response flags (``NR`` no route, ``UO`` overflow, ``DI,FI`` fault delay and abort)
and the endpoint it picked are known only to Envoy, and they are what tells a fault abort from an
app's own 503. Both backends read it, so it lives beside them: the local translator's listeners
write one JSON line per downstream request (``local/translate/listeners.py: ACCESS_LOG_FORMAT``),
keyed by ``x-request-id`` like the app logs, and Envoy flushes the file every few milliseconds
(``local/envoy.py: ACCESS_LOG_FLUSH_MS``); Istio's JSON access log on a pod's stdout has the same
keys (``kube/istio_install.py``).

Pure: ``parse_entry``, ``split_lines``, ``Unclaimed`` (lines waiting for their batch) and
``BatchJoin`` (which lines a batch still needs, and the joined Observations: it joins the echo app's
records, before they are read, so that each Observation is built once, with its line). I/O:
``AccessLogReader`` tails one file from an offset, so a batch parses only the lines written since
the previous read. Lines are shared by every batch of the sidecar: a line read while another
thread's batch is still running stays unclaimed until that batch takes it.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from harness.errors import MeshError
from harness.mesh.base import Observation
from harness.mesh.echo_client import observation_from_json

# Keys of local/translate/listeners.py ACCESS_LOG_FORMAT that the join reads (a unit test pins them).
REQUEST_ID = "request_id"
RESPONSE_CODE = "response_code"
RESPONSE_FLAGS = "response_flags"
UPSTREAM_HOST = "upstream_host"

UNCLAIMED_CAPACITY = 200_000
"""Lines kept for batches that have not taken them yet; the oldest go first (lines of requests no
batch asked for: sent around the mesh, or reaching Envoy after their batch gave up on them)."""

_ABSENT = (None, "-", "")  # how Envoy's JSON formatter writes a value it does not have


@dataclass(frozen=True, slots=True)
class LogEntry:
    """What the join needs from one access log line."""

    request_id: str | None
    response_code: int
    flags: tuple[str, ...]
    upstream_host: str | None


def parse_entry(line: Mapping[str, Any]) -> LogEntry:
    """One decoded access log line -> LogEntry. ``response_flags`` is ``"-"`` or ``"DI,FI"``."""
    request_id, flags, host = line.get(REQUEST_ID), line.get(RESPONSE_FLAGS), line.get(UPSTREAM_HOST)
    return LogEntry(
        request_id=None if request_id in _ABSENT else str(request_id),
        response_code=int(line.get(RESPONSE_CODE) or 0),
        flags=() if flags in _ABSENT else tuple(str(flags).split(",")),
        upstream_host=None if host in _ABSENT else str(host),
    )


def split_lines(data: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines (without their newline), and the unfinished tail a later read completes."""
    *lines, rest = data.split(b"\n")
    return [line for line in lines if line], rest


def decode_lines(lines: Sequence[bytes], path: Path) -> list[dict[str, Any]]:
    """Each line decoded as a JSON object; a line that is not one is a MeshError naming the file.

    The lines are decoded by orjson (about twice the standard library's speed on Envoy's lines);
    only when one fails, or is not an object, are they decoded again one by one by the standard
    library, which names the bad line in its own words (and reads what orjson refuses, such as a
    NaN or a 65-bit integer, as it always did).
    """
    try:
        decoded = [orjson.loads(line) for line in lines]
    except orjson.JSONDecodeError:
        decoded = None
    if decoded is not None and all(isinstance(d, dict) for d in decoded):
        return decoded
    out: list[dict[str, Any]] = []
    for line in lines:
        try:
            one = json.loads(line)
        except ValueError as exc:
            raise MeshError(f"sidecar access log {path}: a line is not JSON ({exc}): {line[:300]!r}") from exc
        if not isinstance(one, dict):
            raise MeshError(f"sidecar access log {path}: a line is not a JSON object: {line[:300]!r}")
        out.append(one)
    return out


class Unclaimed:
    """Log entries by request id, until a batch takes them; at most ``capacity`` (oldest evicted)."""

    def __init__(self, capacity: int = UNCLAIMED_CAPACITY) -> None:
        self._capacity = capacity
        self._by_id: dict[str, list[LogEntry]] = {}
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, entries: Iterable[LogEntry]) -> None:
        """Keep entries that carry a request id (others can never be joined)."""
        for entry in entries:
            if entry.request_id is None:
                continue
            self._by_id.setdefault(entry.request_id, []).append(entry)
            self._size += 1
        while self._size > self._capacity:
            oldest = next(iter(self._by_id))
            self._size -= len(self._by_id.pop(oldest))

    def take(self, wants: Mapping[str, int]) -> list[LogEntry]:
        """Remove and return up to ``wants[id]`` entries per request id (oldest first)."""
        if len(self._by_id) < len(wants):
            ids: Iterable[str] = [i for i in self._by_id if i in wants]
        else:
            ids = [i for i in wants if i in self._by_id]
        out: list[LogEntry] = []
        for request_id in ids:
            entries = self._by_id[request_id]
            n = wants[request_id]
            out += entries[:n]
            if n >= len(entries):
                del self._by_id[request_id]
            else:
                self._by_id[request_id] = entries[n:]
        self._size -= len(out)
        return out


class BatchJoin:
    """The access log lines one batch needs, and its Observations with flags and upstream host filled in.

    The batch is the echo app's /forward records (``ControlClient.forward_records``), in request
    order; ``joined`` reads each one into its Observation (``observation_from_json``) with its line's
    ``flags`` and ``upstream_host``.
    A request with a status answered through the sidecar, so its line is *required*. A request
    with status 0 may never have reached Envoy (connection refused) and then has no line: such
    lines are taken when present, never waited for here (the mesh waits on Envoy's request counter
    instead). When the caller fixed ``x-request-id``, several requests share an id; their lines are
    paired by response code, then in order.
    """

    def __init__(self, records: Sequence[Mapping[str, Any]]) -> None:
        self._records = records
        ids = [r["request_id"] for r in records if r["request_id"]]
        self._wants: dict[str, int] = dict(Counter(ids))
        self._required: dict[str, int] = dict(Counter(r["request_id"] for r in records
                                                      if r["request_id"] and r["status"]))
        self.missing = sum(self._required.values())
        """Required lines not seen yet."""
        self.has_unanswered = any(r["status"] == 0 for r in records)
        """Whether some request got no response (its line, if any, is not required)."""
        self._entries: dict[str, list[LogEntry]] = {}

    def wants(self) -> Mapping[str, int]:
        """Request id -> how many more lines of it the batch can use (read-only)."""
        return self._wants

    def add(self, entries: Iterable[LogEntry]) -> None:
        """Entries taken for this batch (from ``Unclaimed.take(self.wants())``)."""
        for entry in entries:
            request_id = entry.request_id
            if request_id is None or self._wants.get(request_id, 0) <= 0:
                continue
            self._entries.setdefault(request_id, []).append(entry)
            self._wants[request_id] -= 1
            if not self._wants[request_id]:
                del self._wants[request_id]
            if self._required.get(request_id, 0) > 0:
                self._required[request_id] -= 1
                self.missing -= 1

    def missing_ids(self, limit: int = 3) -> list[str]:
        """A few request ids whose required line is missing, for error messages."""
        return [i for i, n in self._required.items() if n > 0][:limit]

    def joined(self) -> list[Observation]:
        """The batch's Observations, in order, with ``flags``/``upstream_host`` from their lines."""
        out: list[Observation] = []
        for record in self._records:
            entries = self._entries.get(record["request_id"])
            if not entries:
                out.append(observation_from_json(record))
                continue
            entry = next((e for e in entries if e.response_code == record["status"]), entries[0])
            entries.remove(entry)
            out.append(observation_from_json({**record, "flags": entry.flags, "upstream_host": entry.upstream_host}))
        return out


class AccessLogReader:
    """Tails one sidecar's access log. Create it before the sidecar's first request; thread-safe.

    ``lines`` counts every line read since creation, to compare with Envoy's own request counter.
    """

    def __init__(self, path: Path, capacity: int = UNCLAIMED_CAPACITY) -> None:
        self.path = path
        self._offset = path.stat().st_size if path.exists() else 0
        self._rest = b""
        self._unclaimed = Unclaimed(capacity)
        self._lock = threading.Lock()
        self.lines = 0

    def take(self, wants: Mapping[str, int]) -> list[LogEntry]:
        """Read what Envoy flushed since the last read, then take the entries ``wants`` asks for."""
        with self._lock:
            self._read_new()
            return self._unclaimed.take(wants)

    def count_lines(self) -> int:
        """Read what Envoy flushed so far (kept for later ``take``s) and return ``lines``."""
        with self._lock:
            self._read_new()
            return self.lines

    def _read_new(self) -> None:
        try:
            with self.path.open("rb") as log:
                log.seek(self._offset)
                data = log.read()
        except FileNotFoundError:
            return  # Envoy creates the file with its first request
        except OSError as exc:
            raise MeshError(f"cannot read the sidecar access log {self.path}: {exc}") from exc
        self._offset += len(data)
        lines, self._rest = split_lines(self._rest + data)
        self.lines += len(lines)
        self._unclaimed.add(parse_entry(d) for d in decode_lines(lines, self.path))


def read_all(path: Path) -> list[dict[str, Any]]:
    """Every complete line of an access log, decoded (an unfinished last line is left out)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise MeshError(f"cannot read the sidecar access log {path}: {exc}") from exc
    return decode_lines(split_lines(data)[0], path)

