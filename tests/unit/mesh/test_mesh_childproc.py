"""read_until and stop on real child processes (tiny Python scripts, bounded)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.mesh.childproc import OutputClosed, OutputTimeout, read_until, stop


def child(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)


def first_line(buf: bytes) -> bytes | None:
    return buf.split(b"\n", 1)[0] if b"\n" in buf else None


def test_read_until_returns_what_found_accepts() -> None:
    proc = child("import sys, time; sys.stdout.write('hel'); sys.stdout.flush(); time.sleep(0.1); print('lo'); time.sleep(30)")
    try:
        assert proc.stdout is not None and read_until(proc.stdout, 10.0, first_line) == b"hello"
    finally:
        stop(proc, 5.0)
    assert proc.returncode is not None


def test_read_until_says_when_the_child_closed_its_output_first() -> None:
    proc = child("print('no newline at the end', end='')")
    assert proc.stdout is not None
    with pytest.raises(OutputClosed) as err:
        read_until(proc.stdout, 10.0, first_line)
    assert err.value.output == b"no newline at the end"
    proc.wait(5.0)


def test_read_until_gives_up_at_the_deadline_and_stop_ends_the_child() -> None:
    proc = child("import time; time.sleep(30)")
    try:
        assert proc.stdout is not None
        with pytest.raises(OutputTimeout) as err:
            read_until(proc.stdout, 0.2, first_line)
        assert not isinstance(err.value, OutputClosed) and err.value.output == b""
    finally:
        stop(proc, 5.0)
    assert proc.returncode is not None
