"""``mesh-harness load --workers N``: a Locust master and N workers through the real client sidecar.

End to end on the local mesh (real Envoy, echo apps, Locust's distributed mode): the merged run
passes as one process does on the same case, every record a worker sent reaches the master, a
worker killed mid-run fails the run by name, and no process survives the run, Ctrl-C or a
SIGKILL of the harness.

Statistics: each run judges the 90/10 split with the pytest statistics (false failure or
inconclusive at most alpha = 1e-6 per run, so the two runs that must pass both do with
probability at least 1 - 2e-6), with ``--delta 0.1`` so that the budget is never what decides:
its fixed-n test needs 759 responses, which 8 s give at 95 requests/s; this loaded 2-core
machine measured 600 to 2,000. Time: a run of 8 s takes about 25 s here; the bounds below are
lower bounds on progress (records flowing) and generous upper bounds on exits.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from harness.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, main
from harness.mesh.local.workdir import OWNER_FILE, PREFIX, sweep_orphans
from tests.integration.load_runs import JUDGED, children, outcome

pytestmark = pytest.mark.envoy

CASE = str(Path(__file__).parents[2] / "cases" / "load-canary.yaml")
FLOW_TIMEOUT_S = 120.0  # from the command's start until records reach the master (mesh, Locust imports, 3 processes)
GONE_TIMEOUT_S = 30.0  # from the harness's exit (or death) until every process it started is gone
RUN_TIMEOUT_S = 240.0


def _identities(root: psutil.Process) -> dict[int, float]:
    """Every descendant of ``root`` as pid -> start time (a pid reused later is not a survivor)."""
    out = {}
    for p in root.children(recursive=True):
        try:
            out[p.pid] = p.create_time()
        except psutil.NoSuchProcess:
            pass
    return out


def _alive(identities: dict[int, float]) -> dict[int, str]:
    alive = {}
    for pid, started in identities.items():
        try:
            p = psutil.Process(pid)
            if p.create_time() == started and p.status() != psutil.STATUS_ZOMBIE:
                alive[pid] = " ".join(p.cmdline())[:160]
        except psutil.NoSuchProcess:
            pass
    return alive


def _wait_gone(identities: dict[int, float], what: str) -> None:
    deadline = time.monotonic() + GONE_TIMEOUT_S
    while (alive := _alive(identities)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive, f"{what}: still alive after {GONE_TIMEOUT_S:g}s: {alive}"


def _locust(root: psutil.Process, role: str) -> psutil.Process | None:
    """The Locust process under ``root`` whose command line has ``role`` (``--master``, ``worker-2``)."""
    for p in root.children(recursive=True):
        try:
            cmdline = p.cmdline()
        except psutil.NoSuchProcess:
            continue
        if "locust" in cmdline and role in cmdline:
            return p
    return None


def _wait_records_flow(root: psutil.Process) -> None:
    """Until the master's records file has records (the workers run and relay), bounded."""
    deadline = time.monotonic() + FLOW_TIMEOUT_S
    while time.monotonic() < deadline:
        master = _locust(root, "--master")
        if master is not None:
            try:
                cmdline = master.cmdline()
                records = Path(cmdline[cmdline.index("--mesh-records") + 1])
                if records.exists() and records.stat().st_size > 0:
                    return
            except (psutil.NoSuchProcess, OSError, ValueError):
                pass
        time.sleep(0.1)
    pytest.fail(f"no records reached the Locust master within {FLOW_TIMEOUT_S:g}s")


def test_load_two_workers_merge_every_record_and_judge_as_one_process(capsys: pytest.CaptureFixture[str]) -> None:
    before = children()
    code = main(["load", CASE, *JUDGED])
    single = capsys.readouterr().out
    assert code == EXIT_OK, single
    code = main(["load", CASE, *JUDGED, "--workers", "2"])
    merged = capsys.readouterr().out
    assert code == EXIT_OK, merged
    assert "a Locust master and 2 workers" in merged and "lost worker" not in merged
    # every worker sent through the sidecar, and every record it sent reached the master
    shares = {m.group(1): int(m.group(2)) for m in re.finditer(r"(worker-\d) (\d+) records", merged)}
    assert shares.keys() == {"worker-1", "worker-2"} and min(shares.values()) > 0, merged
    total = re.search(r"load-canary-90-10: (\d+) requests", merged)
    assert total and int(total.group(1)) == sum(shares.values()), merged
    # the same verdict as one process: the check passes, with a row per version
    for out in (single, merged):
        assert outcome(out, "split follows the weights") == "pass", out
        assert re.search(r"│ split follows the weights │ v1 ", out) and re.search(r"│ split follows the weights │ v2 ", out)
    assert children() <= before  # master, workers and the mesh are gone


def test_load_killed_worker_fails_the_run_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    before = children()
    me = psutil.Process()
    killed: list[int] = []

    def kill_worker_2() -> None:
        _wait_records_flow(me)
        worker = _locust(me, "worker-2")
        if worker is not None:
            killed.append(worker.pid)
            worker.kill()

    killer = threading.Thread(target=kill_worker_2, daemon=True)
    killer.start()
    code = main(["load", CASE, "--duration", "8s", "--workers", "2"])
    out = capsys.readouterr().out
    killer.join(timeout=FLOW_TIMEOUT_S)
    assert killed, "worker-2 was not found to kill"
    assert code == EXIT_FAILED, out
    assert re.search(r"lost worker worker-2 \(\d+ records delivered\)", out), out
    assert "load run failed" in out
    # what worker-1 and the dead worker delivered is judged, never as a pass (fail has chance <= 1e-6)
    assert outcome(out, "split follows the weights") == "inconclusive", out
    assert "worker-1" in out and "lost worker worker-1" not in out
    assert children() <= before


@pytest.mark.parametrize("signal_to_send", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "crash"])
def test_load_workers_leave_nothing_after_ctrl_c_or_a_crash(signal_to_send: signal.Signals, tmp_path: Path) -> None:
    """The harness itself is signalled while its master and workers send: all of them go (SIGKILL: by pdeathsig)."""
    command = [sys.executable, "-m", "harness.cli", "load", CASE, "--duration", "60s", "--workers", "2"]
    # A temp dir of its own: any mesh starting on this machine sweeps dead owners' work dirs in its temp dir.
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(private_tmp)}
    with open(tmp_path / "out.log", "wb") as log:
        harness = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        root = psutil.Process(harness.pid)
        _wait_records_flow(root)
        processes = _identities(root)
        master = _locust(root, "--master")
        assert _locust(root, "worker-1") and _locust(root, "worker-2") and master
        # the master of local workers listens on loopback only
        listening = [c.laddr for c in master.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
        assert listening and all(address.ip == "127.0.0.1" for address in listening), listening
        harness.send_signal(signal_to_send)
        code = harness.wait(timeout=RUN_TIMEOUT_S)
        if signal_to_send == signal.SIGINT:
            assert code == EXIT_INTERRUPTED, (tmp_path / "out.log").read_text()
        _wait_gone(processes, f"after {signal_to_send.name} to the harness")
        # Its work dirs (the mesh's, the load run's): removed on Ctrl-C; after a SIGKILL, by the next run's sweep.
        if signal_to_send == signal.SIGKILL:
            assert _workdirs_of(harness.pid, private_tmp), "a killed harness leaves its work dirs for the next run to sweep"
            sweep_orphans(private_tmp)
        assert not _workdirs_of(harness.pid, private_tmp)
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait()


def _workdirs_of(pid: int, parent: Path) -> list[Path]:
    """The harness work dirs (``mesh-harness-*``) in ``parent`` owned by process ``pid``."""
    return [d for d in parent.glob(f"{PREFIX}*")
            if (d / OWNER_FILE).is_file() and (d / OWNER_FILE).read_text().strip() == str(pid)]


def _listening_ports(root: psutil.Process) -> set[int]:
    ports = set()
    for p in root.children(recursive=True):
        try:
            ports |= {c.laddr.port for c in p.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return ports


def test_load_master_judges_a_worker_harness_that_sends_through_its_own_mesh(tmp_path: Path) -> None:
    """Two harnesses on this machine (loopback only), as on two machines: ``--master`` and ``--worker``.

    The worker harness runs a mesh of its own and its Locust worker sends to that mesh's sidecar
    listener (not the master's); the master's report has the worker's records, judged."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    base = [sys.executable, "-m", "harness.cli", "load", CASE, *JUDGED, "--master-port", port]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    logs = {name: tmp_path / f"{name}.log" for name in ("master", "worker")}
    with open(logs["master"], "wb") as m, open(logs["worker"], "wb") as w:
        master = subprocess.Popen([*base, "--master", "--expect-workers", "1", "--master-bind-host", "127.0.0.1"],
                                  stdout=m, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        worker = subprocess.Popen([*base, "--worker", "--master-host", "127.0.0.1"],
                                  stdout=w, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        worker_root = psutil.Process(worker.pid)
        _wait_records_flow(psutil.Process(master.pid))
        processes = {**_identities(worker_root), **_identities(psutil.Process(master.pid))}
        locust_worker = _locust(worker_root, "--worker")
        assert locust_worker is not None
        cmdline = locust_worker.cmdline()
        own = int(cmdline[cmdline.index("--mesh-own-host") + 1].rsplit(":", 1)[1])
        assert own in _listening_ports(worker_root)  # its own mesh's sidecar listener
        assert own not in _listening_ports(psutil.Process(master.pid))
        assert master.wait(timeout=RUN_TIMEOUT_S) == EXIT_OK, logs["master"].read_text()
        assert worker.wait(timeout=RUN_TIMEOUT_S) == EXIT_OK, logs["worker"].read_text()
        out = logs["master"].read_text()
        shares = re.findall(r"workers: \S+ (\d+) records", out)
        total = re.search(r"load-canary-90-10: (\d+) requests", out)
        assert shares and total and int(shares[0]) == int(total.group(1)) > 0, out
        assert outcome(out, "split follows the weights") == "pass", out
        assert "worker done: the master ended the run" in logs["worker"].read_text()
        _wait_gone(processes, "after the master and worker runs")
    finally:
        for p in (master, worker):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_load_worker_waiting_for_its_master_leaves_nothing_after_ctrl_c(tmp_path: Path) -> None:
    """A ``--worker`` harness whose master never comes is stopped by Ctrl-C: its Locust worker and its mesh go."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])  # nothing listens there
    command = [sys.executable, "-m", "harness.cli", "load", CASE, "--worker", "--master-host", "127.0.0.1",
               "--master-port", port]
    with open(tmp_path / "out.log", "wb") as log:
        harness = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
    try:
        root = psutil.Process(harness.pid)
        deadline = time.monotonic() + FLOW_TIMEOUT_S
        while _locust(root, "--worker") is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _locust(root, "--worker") is not None, (tmp_path / "out.log").read_text()
        processes = _identities(root)
        harness.send_signal(signal.SIGINT)
        assert harness.wait(timeout=RUN_TIMEOUT_S) == EXIT_INTERRUPTED, (tmp_path / "out.log").read_text()
        _wait_gone(processes, "after Ctrl-C to a waiting worker")
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait()
