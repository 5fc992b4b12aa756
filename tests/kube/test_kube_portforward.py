"""PortForward with a stand-in kubectl (a script that prints what kubectl prints): readiness, failure, stop."""

from __future__ import annotations

import sys
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
