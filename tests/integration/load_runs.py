"""Shared by the load tests: this process's children, and a check's outcome in a load run's printed report."""

from __future__ import annotations

import re

import psutil


def children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def outcome(out: str, check: str) -> str:
    """The outcome on the check's own row of the "expectations under load" table."""
    match = re.search(rf"│ {re.escape(check)}\s*│\s*│ (\w+)", out)
    assert match, out
    return match.group(1)
