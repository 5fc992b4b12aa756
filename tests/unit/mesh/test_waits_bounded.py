"""Every wait of the local mesh (and of what both meshes share), the environment daemon and the runner is
bounded, and says what it waited for.

``test_every_blocking_call_has_a_timeout`` reads the source (AST, no import, no I/O beyond reading the
files) and lists each call that can block without end when given no timeout: ``x.wait()``,
``x.join()``, ``x.result()``, ``x.acquire()``, a zero-argument ``queue.get()``, ``communicate()``,
``selector.select()``, ``select.select(r, w, x)``, ``os.waitpid(pid, 0)``, ``subprocess.run/call/
check_call/check_output``, ``urlopen``, ``socket.create_connection``, ``serve_forever``. A call passed
to ``asyncio.wait_for(call, timeout)`` is bounded by it. The few waits that are unbounded on purpose
are listed in ``DELIBERATE`` with the reason; an entry that no longer matches any call fails too, so
the list cannot rot. Coroutines on the control plane's loop are bounded by the timeout of
``ControlPlane._call``, which hands them over (and is scanned here).

``test_polls_go_through_wait_until`` refuses a hand-rolled poll (a loop that sleeps) anywhere in
``harness/``: a poll goes through ``harness.waits.wait_until``, which bounds it by a deadline and a
count and raises a ``SyncTimeout`` with the caller's message. The few loops that sleep for another
reason are listed in ``SLEEPING_LOOPS`` with the reason and the bound; that list cannot rot either.

The main waits give up with a message naming what they waited for and the bound. Those pinned
elsewhere are listed in ``PINNED`` (this test checks the pin is still there, so none is duplicated);
the daemon's ready wait had none and is pinned here.
"""

from __future__ import annotations

import ast
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.env import commands
from harness.errors import SyncTimeout

ROOT = Path(__file__).resolve().parents[3]
SCANNED = sorted(
    [*ROOT.glob("harness/mesh/local/*.py"), *ROOT.glob("harness/mesh/*.py"), *ROOT.glob("harness/env/*.py"),
     ROOT / "harness/runner.py", ROOT / "harness/waits.py"]
)

NEED_ONE_ARG = {"wait", "join", "result"}  # Event/Popen/Condition.wait(t), Thread.join(t), Future.result(t)
SUBPROCESS_RUNS = {"run", "call", "check_call", "check_output"}
FOREVER = {"serve_forever"}
DELIBERATE = {
    ("harness/env/daemon.py", "serve", "stop.wait()"):
        "the environment's lifetime: the daemon runs until `mesh-harness down` or a signal sets the event",
    ("harness/mesh/local/xds.py", "XdsServer.StreamAggregatedResources", "inbox.get()"):
        "an xDS stream's lifetime: the reader waits for Envoy's next request until the stream ends "
        "(END_OF_STREAM) or the server stops and cancels it",
}


@dataclass(frozen=True)
class Blocking:
    path: str
    function: str
    call: str
    line: int

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.path, self.function, self.call)


def unbounded_calls(tree: ast.AST, path: str) -> Iterator[Blocking]:
    """Calls in ``tree`` that may block without end, with the function (``Class.method``) they are in."""
    bounded_by_wait_for = {id(arg) for node in ast.walk(tree) if isinstance(node, ast.Call)
                           and _name(node.func) == "wait_for" and len(node.args) + len(node.keywords) >= 2
                           for arg in node.args[:1]}

    def visit(node: ast.AST, scope: list[str]) -> Iterator[Blocking]:
        for child in ast.iter_child_nodes(node):
            inner = [*scope, child.name] if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else scope
            if isinstance(child, ast.Call) and id(child) not in bounded_by_wait_for and _may_block_forever(child):
                yield Blocking(path, ".".join(scope) or "<module>", ast.unparse(child), child.lineno)
            yield from visit(child, inner)

    yield from visit(tree, [])


def _may_block_forever(call: ast.Call) -> bool:
    name = _name(call.func)
    receiver = call.func.value if isinstance(call.func, ast.Attribute) else None
    receiver_name = _name(receiver) if receiver is not None else None
    keywords = {k.arg for k in call.keywords}
    has_timeout = bool(keywords & {"timeout", "timeout_s"})
    positional = len(call.args)
    if name in NEED_ONE_ARG and receiver is not None:
        return positional == 0 and not has_timeout
    if name == "acquire" and receiver is not None:
        return positional < 2 and not has_timeout and "blocking" not in keywords
    if name == "get" and receiver is not None:
        return positional == 0 and not call.keywords  # a queue; dict.get always has a key
    if name == "communicate":
        return positional < 2 and not has_timeout
    if name == "select" and receiver_name == "select":
        return positional < 4 and not has_timeout
    if name == "select" and receiver is not None:
        return positional == 0 and not has_timeout
    if name == "waitpid":
        return positional < 2 or "WNOHANG" not in ast.unparse(call.args[1])
    if name in SUBPROCESS_RUNS and receiver_name == "subprocess":
        return not has_timeout
    if name in ("urlopen", "create_connection"):
        return not has_timeout and positional < (3 if name == "urlopen" else 2)
    return name in FOREVER


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return None


def all_unbounded() -> list[Blocking]:
    return [b for path in SCANNED
            for b in unbounded_calls(ast.parse(path.read_text(), str(path)), str(path.relative_to(ROOT)))]


# --- the scan ----------------------------------------------------------------------------------------


def test_every_blocking_call_has_a_timeout() -> None:
    found = all_unbounded()
    unexplained = [f"{b.path}:{b.line}: {b.call} (in {b.function})" for b in found if b.key not in DELIBERATE]
    assert not unexplained, (
        "blocking calls without a timeout; pass one (and say what was awaited when it runs out), or add the call "
        "to DELIBERATE with the reason it may wait without end:\n" + "\n".join(unexplained))
    stale = set(DELIBERATE) - {b.key for b in found}
    assert not stale, f"DELIBERATE entries that match no call any more (remove them): {sorted(stale)}"


def test_the_scan_finds_what_it_looks_for() -> None:
    """The detector itself: a truth table of calls that may block without end, and their bounded twins."""
    source = '''
def f(proc, thread, future, lock, queue, sel, event, d):
    proc.wait(); proc.wait(5); proc.wait(timeout=5)
    thread.join(); thread.join(1.0); ", ".join(d)
    future.result(); future.result(timeout=2)
    lock.acquire(); lock.acquire(True, 1.0); lock.acquire(blocking=False)
    queue.get(); d.get("k")
    proc.communicate(); proc.communicate(timeout=3)
    select.select(r, w, x); select.select(r, w, x, 1.0)
    sel.select(); sel.select(0.5)
    os.waitpid(pid, 0); os.waitpid(pid, os.WNOHANG)
    subprocess.run(["x"]); subprocess.run(["x"], timeout=9)
    server.serve_forever()
    asyncio.wait_for(event.wait(), 3)
'''
    calls = [b.call for b in unbounded_calls(ast.parse(source), "<test>")]
    assert calls == ["proc.wait()", "thread.join()", "future.result()", "lock.acquire()", "queue.get()",
                     "proc.communicate()", "select.select(r, w, x)", "sel.select()", "os.waitpid(pid, 0)",
                     "subprocess.run(['x'])", "server.serve_forever()"]


# --- polls: one helper, no hand-rolled sleep loops -----------------------------------------------


POLL_SCANNED = sorted(p for p in ROOT.glob("harness/**/*.py") if "sample_apps" not in p.parts)
"""Every module of the harness but the echo app, a program of its own (its sleeps pace a batch or play a delay knob)."""
SLEEPS = {"sleep"}  # time.sleep, gevent.sleep, asyncio.sleep, or an injected ``sleep``
SLEEPING_LOOPS = {
    ("harness/waits.py", "wait_until"): "the one bounded poll: at most int(timeout_s / poll_s) + 2 looks, and a deadline",
    ("harness/env/commands.py", "logs"):
        "`mesh-harness logs -f` streams, it awaits nothing: it ends at follow_for_s (a deadline in the loop) or Ctrl-C",
    ("harness/locust/relay.py", "WorkerRelay._flush_every"):
        "a Locust worker's flusher greenlet, for as long as the worker runs: close() kills it",
    ("harness/locust/relay.py", "MasterRelay.finish"):
        "gevent (the Locust master): gevent.sleep lets the greenlets deliver the last batches; int(FINAL_WAIT_S / 0.1) "
        "looks, and what did not come is reported by the worker ledger, not raised",
}


@dataclass(frozen=True)
class SleepingLoop:
    path: str
    function: str
    line: int

    @property
    def key(self) -> tuple[str, str]:
        return (self.path, self.function)


def sleeping_loops(tree: ast.AST, path: str) -> Iterator[SleepingLoop]:
    """``for``/``while`` loops whose own body (not a function defined in it) calls a ``sleep``."""

    def sleeps(loop: ast.For | ast.AsyncFor | ast.While) -> bool:
        todo: list[ast.AST] = [*loop.body, *loop.orelse]
        while todo:
            node = todo.pop()
            if isinstance(node, ast.Call) and _name(node.func) in SLEEPS:
                return True
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                todo.extend(ast.iter_child_nodes(node))
        return False

    def visit(node: ast.AST, scope: list[str]) -> Iterator[SleepingLoop]:
        for child in ast.iter_child_nodes(node):
            inner = [*scope, child.name] if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else scope
            if isinstance(child, (ast.For, ast.AsyncFor, ast.While)) and sleeps(child):
                yield SleepingLoop(path, ".".join(scope) or "<module>", child.lineno)
            yield from visit(child, inner)

    yield from visit(tree, [])


def test_polls_go_through_wait_until() -> None:
    found = [loop for path in POLL_SCANNED
             for loop in sleeping_loops(ast.parse(path.read_text(), str(path)), str(path.relative_to(ROOT)))]
    hand_rolled = [f"{loop.path}:{loop.line}: a loop that sleeps (in {loop.function})" for loop in found
                   if loop.key not in SLEEPING_LOOPS]
    assert not hand_rolled, (
        "hand-rolled polls; wait with harness.waits.wait_until(condition, timeout_s, poll_s, message=...) instead, "
        "or, for a loop that sleeps without waiting on a condition, add it to SLEEPING_LOOPS with its bound:\n"
        + "\n".join(hand_rolled))
    stale = set(SLEEPING_LOOPS) - {loop.key for loop in found}
    assert not stale, f"SLEEPING_LOOPS entries that match no loop any more (remove them): {sorted(stale)}"


def test_the_poll_scan_finds_sleeping_loops() -> None:
    source = '''
def f(deadline):
    while True:
        time.sleep(0.1)
    for _ in range(3):
        if done():
            break
        gevent.sleep(0.1)
    for x in items:
        def later():
            time.sleep(1)
    time.sleep(2)
    wait_until(lambda: done(), 1.0, 0.1, message="done")
'''
    assert [loop.line for loop in sleeping_loops(ast.parse(source), "<test>")] == [3, 5]


# --- what the main waits say when they give up ---------------------------------------------------------


PINNED = [
    # (wait, test file that pins its message, a fragment of that pin naming what was awaited and the bound)
    ("Envoy ready (admin /ready)", "tests/unit/xds/test_xds_envoy_process.py", "not ready after 0.1s (last /ready:"),
    ("xDS ACK of a version (SyncTimeout)", "tests/unit/xds/test_xds_stream.py", "still at version 1, want 2 after 0.1s"),
    ("control plane's ACK wait", "tests/unit/xds/test_xds_controlplane.py", r"want 1 after 0\.1s"),
    ("echo app ready line", "tests/integration/test_echo_app.py", r"printed no ready line within 0.001s"),
]


@pytest.mark.parametrize(("wait", "test_file", "pin"), PINNED, ids=[p[0] for p in PINNED])
def test_the_main_waits_have_their_message_pinned(wait: str, test_file: str, pin: str) -> None:
    assert pin in (ROOT / test_file).read_text(), f"{wait}: the test pinning its timeout message is gone from {test_file}"


def test_daemon_ready_wait_names_the_daemon_the_bound_and_stops_it(tmp_path: Path) -> None:
    """``mesh-harness up`` waits for the daemon's state file; a daemon that never writes it is stopped
    and the error says what was awaited, for how long, and ends with the daemon's log."""
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    (env_dir / "daemon.log").write_text("starting the mesh\n")
    silent = os.posix_spawn(sys.executable, [sys.executable, "-c", "import time; time.sleep(30)"], dict(os.environ))
    try:
        started = time.monotonic()
        with pytest.raises(SyncTimeout) as timed_out:
            commands._wait_ready(silent, env_dir, "demo", 0.2)
        assert time.monotonic() - started < commands.KILL_TIMEOUT_S  # SIGTERM ends it at once
    finally:
        _reap(silent)
    assert str(timed_out.value) == (
        f"environment 'demo': the daemon (pid {silent}) did not report ready within 0.2s; it was stopped. "
        "Its log:\nstarting the mesh")
    assert not env_dir.exists()


def _reap(pid: int) -> None:
    """Kill and reap ``pid`` if ``_wait_ready`` did not (it reaps what it stops); bounded by SIGKILL."""
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
