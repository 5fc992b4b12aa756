"""Progress of a run as the user sees it: the observer the CLI hands to the runner, meshes and istiod build.

On a terminal a live area shows what runs now (a spinner and its elapsed time: a step, the check being
judged, the running count), and one line per finished step, case apply and check is printed above it.
Without a terminal (a CI log) nothing is redrawn: one line per event, flushed as it happens, like
``pytest -v``, so a log shows how far a run got even if it is killed. Thread-safe: with ``--jobs`` the
events of several meshes arrive from their threads, and several checks are being judged at once.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from harness.progress import CaseApplied, CheckJudged, CheckStarted, Event, StepDone, StepStarted

_STYLE = {"pass": "green", "fail": "bold red", "inconclusive": "yellow", "error": "bold magenta"}
_ORDER = ("pass", "fail", "inconclusive", "error")


def tally_text(counts: Counter[str]) -> str:
    """``3 pass, 1 fail``: outcomes in a fixed order, the ones that occurred."""
    return ", ".join(f"{counts[k]} {k}" for k in _ORDER if counts[k])


class ConsoleProgress:
    """An ``Observer`` that draws events on ``console``; use it as a context manager (the live area)."""

    def __init__(self, console: Console, *, total_checks: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._console = console
        self._total = total_checks
        self._clock = clock
        self._started = clock()
        self._counts: Counter[str] = Counter()
        self._live = Progress(SpinnerColumn(finished_text="[green]✓[/]"), TimeElapsedColumn(),
                              TextColumn("{task.description}"), console=console, transient=True) \
            if console.is_terminal else None
        self._steps: dict[str, TaskID] = {}
        self._checks: dict[tuple[str, str], TaskID] = {}  # (case, check) being judged -> its spinner
        self._count: TaskID | None = None
        self._lock = threading.RLock()

    def __enter__(self) -> ConsoleProgress:
        if self._live:
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live:
            self._live.stop()

    def __call__(self, event: Event) -> None:
        with self._lock:
            self._draw(event)

    def _draw(self, event: Event) -> None:
        if isinstance(event, StepStarted):
            self._step_started(event)
        elif isinstance(event, StepDone):
            self._step_done(event)
        elif isinstance(event, CaseApplied):
            text = f"applied {escape(event.case)} in {event.seconds:.2f}s"
            self._line(text if event.error is None else f"[bold red]could not apply[/] {escape(event.case)}: "
                                                         f"{escape(event.error)}")
        elif isinstance(event, CheckStarted):
            self._check_started(event)
        else:
            self._check_judged(event)

    def finish(self, seconds: float) -> None:
        """The run's last line: how many checks, how long, how they came out."""
        with self._lock:
            done = sum(self._counts.values())
            self._line(f"[bold]{done} check{'' if done == 1 else 's'} in {seconds:.1f}s[/]: "
                       f"{tally_text(self._counts) or 'none ran'}")

    def _step_started(self, event: StepStarted) -> None:
        detail = f": {event.detail}" if event.detail else ""
        if self._live:
            room = max(20, self._console.width - len(event.name) - 16)  # spinner and elapsed time stay in view
            short = detail if len(detail) <= room else detail[:room - 1] + "…"
            self._steps[event.name] = self._live.add_task(f"[bold]{escape(event.name)}[/]{escape(short)}", total=None)
        else:
            self._line(f"{self._since_start()}  {escape(event.name)}{escape(detail)} ...")

    def _step_done(self, event: StepDone) -> None:
        task = self._steps.pop(event.name, None)
        if self._live and task is not None:
            self._live.remove_task(task)
        mark = "[green]✓[/]" if event.ok else "[bold red]✗ failed[/]"
        self._line(f"{self._since_start()}  {mark} {escape(event.name)} ({event.seconds:.1f}s)")

    def _check_started(self, event: CheckStarted) -> None:
        if not self._live:
            return
        self._checks[(event.case, event.check)] = self._live.add_task(
            f"judging {escape(event.case)} :: {escape(event.check)}", total=None)
        if self._count is None:
            self._count = self._live.add_task(self._count_text(), total=None)

    def _check_judged(self, event: CheckJudged) -> None:
        self._counts[event.outcome] += 1
        done = sum(self._counts.values())
        position = f"[{done}/{self._total}]" if self._total else f"[{done}]"
        style = _STYLE.get(event.outcome, "")
        self._line(f"{position} {escape(event.case)} :: {escape(event.check)}  [{style}]{event.outcome.upper()}[/]  "
                   f"n={event.requests}  {event.seconds:.1f}s")
        if self._live:
            task = self._checks.pop((event.case, event.check), None)
            if task is not None:
                self._live.remove_task(task)
            if self._count is not None:
                self._live.update(self._count, description=self._count_text())

    def _count_text(self) -> str:
        done = sum(self._counts.values())
        of = f"/{self._total}" if self._total else ""
        return f"{done}{of} checks judged" + (f": {tally_text(self._counts)}" if done else "")

    def _since_start(self) -> str:
        return f"{self._clock() - self._started:6.1f}s"

    def _line(self, text: str) -> None:
        target = self._live.console if self._live else self._console
        target.print(text, highlight=False, soft_wrap=True)
        if not self._live:
            target.file.flush()
