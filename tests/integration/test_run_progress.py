"""``mesh-harness run`` shows what it is doing while it runs, on the real local mesh.

In a log (stdout a pipe) each check's line is flushed as the check is judged, not at the end: the test
reads it while the run is still busy with a 40-second policy wait, then stops the run with Ctrl-C. On a
terminal (a pseudo-terminal here) the same lines are printed above a live area, then the table.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.envoy

CLI = Path(sys.executable).with_name("mesh-harness")
CASE = """\
name: progress
config:
  - apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: reviews}
    spec:
      hosts: [reviews]
      http: [{route: [{destination: {host: reviews}}]}]
checks:
  - name: answers
    send: {url: "http://reviews:9080/"}
    expect: {status: 200}
  - name: after a long wait
    wait: 40s
    send: {url: "http://reviews:9080/"}
    expect: {status: 200}
"""
#: Generous: a mesh start, an apply and 135 requests on a loaded 2-core machine.
FIRST_LINE_DEADLINE_S = 240.0
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def read_until(fd: int, needle: str | None, deadline_s: float) -> str:
    """Everything read from ``fd`` until ``needle`` appears, or with ``needle=None`` until its writer
    closes it (a pty: EIO); AssertionError with what came at the deadline.

    The terminal test reads to the end rather than twice: a loaded machine can hand the table and the
    line after it over in the chunk that also holds the first needle, and a second read then waits for
    text that was already read (seen in the soak of 2026-12-07)."""
    raw = b""  # decoded as a whole: a chunk may end inside a multi-byte character (the ✓)

    def text() -> str:
        return ANSI.sub("", raw.decode(errors="replace"))

    end = time.monotonic() + deadline_s
    while needle is None or needle not in text():
        left = end - time.monotonic()
        assert left > 0, f"no {needle or 'end of output'!r} within {deadline_s:g}s; got:\n{text()}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # a pty reports EIO once the other side is closed
                chunk = b""
            if not chunk:
                assert needle is None, f"the run ended before {needle!r}; got:\n{text()}"
                break
            raw += chunk
    return text()


def test_read_until_the_end_keeps_what_came_in_one_chunk() -> None:
    """The soak's failure, without a run: the whole output arrives at once, then the writer closes."""
    reader, writer = os.pipe()
    try:
        os.write(writer, b"[1/1] x  PASS\n1 check in 0.1s: 1 pass\nmesh-harness results\n...\n1 pass\n")
        os.close(writer)
        assert read_until(reader, None, 5.0).endswith("mesh-harness results\n...\n1 pass\n")
    finally:
        os.close(reader)


def test_run_in_a_log_flushes_each_check_as_it_is_judged(tmp_path: Path) -> None:
    case = tmp_path / "progress.yaml"
    case.write_text(CASE)
    proc = subprocess.Popen([str(CLI), "run", str(case)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        seen = read_until(proc.stdout.fileno(), "[1/2] progress :: answers  PASS  n=135", FIRST_LINE_DEADLINE_S)
        # The second check is still waiting out its 40 s: the line came before the run ended.
        assert proc.poll() is None
        lines = seen.splitlines()
        assert any(line.endswith("mesh start: --mesh local ...") for line in lines), seen
        assert any("✓ mesh start (" in line for line in lines), seen
        assert any(line.startswith("applied progress in ") for line in lines), seen
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err


def test_run_on_a_terminal_shows_live_progress_then_the_table(tmp_path: Path) -> None:
    case = tmp_path / "progress.yaml"
    case.write_text(CASE.split("  - name: after a long wait")[0])
    controller, terminal = pty.openpty()
    errors = tmp_path / "stderr.txt"
    with errors.open("wb") as err:
        proc = subprocess.Popen([str(CLI), "run", str(case)], stdout=terminal, stderr=err,
                                env={**os.environ, "COLUMNS": "160", "TERM": "xterm"})
    os.close(terminal)
    try:
        seen = read_until(controller, None, FIRST_LINE_DEADLINE_S + 60.0)
        assert proc.wait(timeout=60) == 0, errors.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        os.close(controller)
    assert "✓ mesh start (" in seen and "applied progress in " in seen
    assert "[1/1] progress :: answers  PASS  n=135" in seen
    assert re.search(r"1 check in \d+\.\ds: 1 pass", seen), seen
    assert seen.index("[1/1] progress :: answers") < seen.index("mesh-harness results")
