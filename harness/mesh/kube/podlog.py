"""Reading a container log in increments: timestamped lines since a cursor (pure).

The API server returns a log with ``timestamps=true`` as ``<RFC 3339 nano> <line>``; ``sinceTime``
has second precision, so each read asks from the second of the last line seen and drops what the
cursor already covers (lines at the cursor's exact timestamp are counted, since several can share it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class LogCursor:
    """The timestamp of the newest line read, and how many lines carried exactly that timestamp."""

    at: tuple[int, int] | None = None  # (unix seconds, nanoseconds)
    seen_at: int = 0

    def since_time(self) -> str | None:
        """The ``sinceTime`` query value: the cursor's second, RFC 3339."""
        if self.at is None:
            return None
        return datetime.fromtimestamp(self.at[0], tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> tuple[int, int]:
    """``2026-05-01T10:00:00.123456789Z`` -> (unix seconds, nanoseconds); fractions of any length."""
    main, _, rest = text.rstrip("Z").partition(".")
    seconds = int(datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp())
    digits = "".join(c for c in rest if c.isdigit())[:9]
    return seconds, int(digits.ljust(9, "0")) if digits else 0


def new_lines(text: str, cursor: LogCursor) -> tuple[list[str], LogCursor]:
    """Lines of ``text`` after ``cursor`` (without their timestamps), and the cursor after them."""
    out: list[str] = []
    at, seen_at = cursor.at, cursor.seen_at
    skip_at = cursor.seen_at  # lines at exactly the cursor's timestamp that were already read
    for raw in text.splitlines():
        stamp, _, line = raw.partition(" ")
        try:
            when = parse_timestamp(stamp)
        except ValueError:
            continue  # not a timestamped line (a truncated read): nothing to place it by
        if cursor.at is not None and when < cursor.at:
            continue
        if cursor.at is not None and when == cursor.at and skip_at > 0:
            skip_at -= 1
            continue
        out.append(line)
        if when == at:
            seen_at += 1
        else:
            at, seen_at = when, 1
    return out, LogCursor(at, seen_at)
