"""The progress observer the CLI draws: a line per event in a log, a live area plus lines on a terminal."""

from __future__ import annotations

import io
import itertools
import threading

from rich.console import Console

from harness.progress import CaseApplied, CheckJudged, CheckStarted, StepDone, Steps, StepStarted, step
from harness.report.progress import ConsoleProgress

EVENTS = [
    StepStarted("mesh start", "--mesh local"), StepDone("mesh start", 0.5),
    CaseApplied("canary", 0.02), CheckStarted("canary", "split"), CheckJudged("canary", "split", "pass", 841, 1.25),
    CheckStarted("canary", "leak"), CheckJudged("canary", "leak", "fail", 12, 0.1),
    CaseApplied("broken", 5.0, "node client: RDS still at 0, want 1 after 5s"),
    CheckJudged("broken", "x", "error", 0, 5.0),
]


def fake_clock() -> itertools.count[float]:
    return itertools.count(0.0, 0.5)


def test_progress_in_a_log_is_one_line_per_event() -> None:
    out = io.StringIO()
    clock = fake_clock()
    with ConsoleProgress(Console(file=out, width=200, color_system=None), total_checks=3,
                         clock=lambda: next(clock)) as progress:
        for event in EVENTS:
            progress(event)
        progress.finish(7.25)
    assert out.getvalue().splitlines() == [
        "   0.5s  mesh start: --mesh local ...",
        "   1.0s  ✓ mesh start (0.5s)",
        "applied canary in 0.02s",
        "[1/3] canary :: split  PASS  n=841  1.2s",
        "[2/3] canary :: leak  FAIL  n=12  0.1s",
        "could not apply broken: node client: RDS still at 0, want 1 after 5s",
        "[3/3] broken :: x  ERROR  n=0  5.0s",
        "3 checks in 7.2s: 1 pass, 1 fail, 1 error",
    ]


def test_progress_on_a_terminal_prints_the_same_lines_and_clears_the_live_area() -> None:
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=True, color_system=None)
    with ConsoleProgress(console, total_checks=3) as progress:
        for event in EVENTS:
            progress(event)
        progress.finish(7.25)
    text = out.getvalue()
    for line in ("✓ mesh start (0.5s)", "[1/3] canary :: split  PASS  n=841  1.2s", "[2/3] canary :: leak  FAIL",
                 "could not apply broken", "3 checks in 7.2s: 1 pass, 1 fail, 1 error"):
        assert line in text, line
    assert "mesh start: --mesh local ..." not in text  # a running step is a live row, not a line


def test_progress_on_a_terminal_shows_every_check_being_judged_at_once() -> None:
    """``run --jobs``: checks of several meshes are judged at the same time; each has its row until judged."""
    console = Console(file=io.StringIO(), width=200, force_terminal=True, color_system=None)
    with ConsoleProgress(console, total_checks=2) as progress:
        progress(CheckStarted("canary", "split"))
        progress(CheckStarted("outlier", "ejects"))
        progress(CheckJudged("canary", "split", "pass", 841, 1.25))
        rows = [task.description for task in progress._live.tasks]  # type: ignore[union-attr]  # the live area's rows
    assert "judging outlier :: ejects" in rows and not any("canary :: split" in row for row in rows)


def test_progress_numbers_each_check_once_when_events_come_from_several_threads() -> None:
    out = io.StringIO()
    jobs, checks = 4, 50
    with ConsoleProgress(Console(file=out, width=200, color_system=None), total_checks=jobs * checks) as progress:
        def job(n: int) -> None:
            for i in range(checks):
                progress(CheckStarted(f"case{n}", f"c{i}"))
                progress(CheckJudged(f"case{n}", f"c{i}", "pass", 1, 0.0))

        threads = [threading.Thread(target=job, args=(n,)) for n in range(jobs)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    positions = [line.split("]", 1)[0] for line in out.getvalue().splitlines()]
    assert sorted(positions, key=lambda p: int(p[1:].split("/")[0])) == [f"[{k}/200" for k in range(1, 201)]


def test_step_reports_start_and_elapsed_time_also_when_the_body_raises() -> None:
    seen: list[object] = []
    clock = iter([10.0, 12.5, 20.0, 21.0])
    with step(seen.append, "cluster create", "kind create cluster", clock=lambda: next(clock)):
        pass
    try:
        with step(seen.append, "Istio install", clock=lambda: next(clock)):
            raise RuntimeError("istioctl exited with 1")
    except RuntimeError:
        pass
    assert seen == [StepStarted("cluster create", "kind create cluster"), StepDone("cluster create", 2.5),
                    StepStarted("Istio install"), StepDone("Istio install", 1.0, ok=False)]


def test_steps_end_each_step_at_the_next_one() -> None:
    seen: list[object] = []
    clock = iter([0.0, 3.0, 3.0, 10.0])
    steps = Steps(seen.append, clock=lambda: next(clock))
    steps("resolve", "go list")
    steps("compile", "go build")
    steps.close()
    steps.close()  # idempotent
    assert seen == [StepStarted("resolve", "go list"), StepDone("resolve", 3.0), StepStarted("compile", "go build"),
                    StepDone("compile", 7.0)]
