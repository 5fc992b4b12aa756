"""Cleanup that does not stop at the first failure: one stuck process must not keep the others alive."""

from __future__ import annotations

from collections.abc import Callable, Iterable


def run_all(calls: Iterable[Callable[[], None]]) -> None:
    """Call each one even if an earlier one raised; then re-raise the first error."""
    first: BaseException | None = None
    for call in calls:
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 (re-raised below, after the rest ran)
            first = first or exc
    if first is not None:
        raise first
