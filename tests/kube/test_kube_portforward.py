"""PortForward with a stand-in kubectl (a script that prints what kubectl prints): readiness, failure, stop."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from harness.errors import ProcessError, SyncTimeout
from harness.mesh.kube.portforward import PortForward

READY = """import sys, time
print("Forwarding from 127.0.0.1:41234 -> 15000", flush=True)
print("Forwarding from [::1]:41234 -> 15000", flush=True)
for _ in range(2000):
    print("Handling connection for 41234", flush=True)
time.sleep(60)
"""


def script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "kubectl.py"
    path.write_text(body)
    return [sys.executable, str(path)]


def test_kube_port_forward_ready_then_closed(tmp_path: Path) -> None:
    forward = PortForward(script(tmp_path, READY), "ns/client:15000").start(timeout_s=20)
    try:
        assert forward.local_port == 41234 and forward.is_running()
    finally:
        forward.close()
    assert not forward.is_running()
    forward.close()


def test_kube_port_forward_that_fails_says_why(tmp_path: Path) -> None:
    body = 'import sys; sys.stderr.write("error: unable to forward port: pod not found\\n"); sys.exit(1)\n'
    with pytest.raises(ProcessError, match="port-forward to ns/gone:15000 ended before it was ready .exit code 1.: "
                                           "error: unable to forward port: pod not found"):
        PortForward(script(tmp_path, body), "ns/gone:15000").start(timeout_s=20)


def test_kube_port_forward_silent_times_out(tmp_path: Path) -> None:
    forward = PortForward(script(tmp_path, "import time; time.sleep(60)\n"), "ns/slow:15000")
    with pytest.raises(SyncTimeout, match="kubectl printed no 'Forwarding from' line within 0.5s"):
        forward.start(timeout_s=0.5)
    assert not forward.is_running()


FLAKY = """import sys, time, pathlib
runs = pathlib.Path(sys.argv[1])
runs.write_text(runs.read_text() + " ".join(sys.argv[2:]) + "\\n" if runs.exists() else " ".join(sys.argv[2:]) + "\\n")
print("Forwarding from 127.0.0.1:41234 -> 15000", flush=True)
if sys.argv[-1] == ":15000":  # the first run: a stream error ends it, after a flood on stderr
    sys.stderr.write("E1207 portforward.go:413] an error occurred forwarding 41234 -> 15000: lost\\n" * 3000)
    sys.stderr.flush()
    sys.exit(1)
time.sleep(60)
"""


def test_kube_port_forward_that_exits_is_reopened_on_the_same_port(tmp_path: Path) -> None:
    """kubectl ends a forward after a stream error (and may write a lot to stderr first): the forward notices,
    starts kubectl again on the same local port, and keeps the error; the clients' port stays valid."""
    runs = tmp_path / "runs"
    forward = PortForward([*script(tmp_path, FLAKY), str(runs), ":15000"], "ns/client:15000").start(timeout_s=20)
    try:
        deadline = time.monotonic() + 30
        while not (forward.reopened and forward.is_running() and len(_lines(runs)) == 2):
            assert time.monotonic() < deadline, f"not reopened within 30s: {_lines(runs)}"
            time.sleep(0.05)
        assert _lines(runs) == [":15000", "41234:15000"] and forward.local_port == 41234
        assert "an error occurred forwarding 41234 -> 15000" in forward.last_error
    finally:
        forward.close()
    assert not forward.is_running() and forward.reopened == 1


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []
