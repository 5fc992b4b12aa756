"""read_until and stop on real child processes (tiny Python scripts, bounded)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from harness.mesh.childproc import OutputClosed, OutputTimeout, read_until, stop


@contextmanager
def child(code: str) -> Iterator[subprocess.Popen[bytes]]:
    """A Python child with a stdout pipe; stopped and its pipe closed afterwards."""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        yield proc
    finally:
        stop(proc, 5.0)
        assert proc.stdout is not None
        proc.stdout.close()


def first_line(buf: bytes) -> bytes | None:
    return buf.split(b"\n", 1)[0] if b"\n" in buf else None


def test_read_until_returns_what_found_accepts() -> None:
    with child("import sys, time; sys.stdout.write('hel'); sys.stdout.flush(); time.sleep(0.1); print('lo', flush=True); time.sleep(30)") as proc:
        assert proc.stdout is not None and read_until(proc.stdout, 10.0, first_line) == b"hello"
    assert proc.returncode is not None


def test_read_until_says_when_the_child_closed_its_output_first() -> None:
    with child("print('no newline at the end', end='')") as proc, pytest.raises(OutputClosed) as err:
        assert proc.stdout is not None
        read_until(proc.stdout, 10.0, first_line)
    assert err.value.output == b"no newline at the end"


def test_read_until_gives_up_at_the_deadline_and_stop_ends_the_child() -> None:
    with child("import time; time.sleep(30)") as proc, pytest.raises(OutputTimeout) as err:
        assert proc.stdout is not None
        read_until(proc.stdout, 0.2, first_line)
    assert not isinstance(err.value, OutputClosed) and err.value.output == b""
    assert proc.returncode is not None
