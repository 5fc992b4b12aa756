"""The echo zygote and its launcher as real processes: forked instances serve, exits are reported, nothing leaks.

The local mesh forks every echo app from one zygote (``harness.mesh.local.launcher``); the harness is
then not the apps' parent, so what ``subprocess`` gives for free (exit codes, reaping, signalling the
right process) is shown here to hold, also when the zygote or the harness dies.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from harness.errors import ProcessError
from harness.mesh.childproc import process_exists
from harness.mesh.local.apps import AppProcess
from harness.mesh.local.launcher import EXIT_UNKNOWN, AppLauncher
from harness.waits import wait_until

READY_TIMEOUT_S = 60.0  # a loaded machine; a start is over in well under a second otherwise
EXIT_TIMEOUT_S = 10.0


@pytest.fixture()
def launcher(tmp_path: Path) -> Iterator[AppLauncher]:
    launcher = AppLauncher(tmp_path / "zygote.stderr.log")
    yield launcher
    launcher.close()


def start(launcher: AppLauncher, tmp_path: Path, instance: str, **defaults: str) -> AppProcess:
    return AppProcess.start("reviews", "v1", instance, defaults=defaults, workdir=tmp_path,
                            ready_timeout=READY_TIMEOUT_S, launcher=launcher)



def gone(pid: int) -> bool:
    """Not running: no such process, or a zombie waiting for its parent."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_forked_instances_serve_with_their_own_identity_and_knobs(launcher: AppLauncher, tmp_path: Path) -> None:
    first = start(launcher, tmp_path, "reviews-v1-0")
    second = start(launcher, tmp_path, "reviews-v1-1", status="503")
    try:
        assert {psutil.Process(first.pid).ppid(), psutil.Process(second.pid).ppid()} == {launcher.pid}
        assert first.pid != second.pid
        with httpx.Client(trust_env=False, timeout=10) as http:
            one = http.get(f"http://127.0.0.1:{first.http_port}/")
            two = http.get(f"http://127.0.0.1:{second.http_port}/")
        assert (one.status_code, two.status_code) == (200, 503)
        assert one.headers["x-echo-instance"] == "reviews-v1-0"
        assert two.headers["x-echo-instance"] == "reviews-v1-1"
    finally:
        first.stop()
        second.stop()


def test_the_zygote_reports_each_exit_code(launcher: AppLauncher, tmp_path: Path) -> None:
    stopped, killed = start(launcher, tmp_path, "reviews-v1-0"), start(launcher, tmp_path, "reviews-v1-1")
    assert stopped.exit_code is None and killed.exit_code is None
    stopped.stop()  # SIGTERM: the app ends quietly
    os.kill(killed.pid, signal.SIGKILL)
    wait_until(lambda: killed.exit_code is not None, EXIT_TIMEOUT_S, 0.01, message="the killed app still runs")
    assert (stopped.exit_code, killed.exit_code) == (0, -signal.SIGKILL)
    assert gone(stopped.pid) and gone(killed.pid)  # reaped by the zygote, no zombie left
    killed.stop()  # closes its stdin; a no-op for the process


def test_an_exit_code_is_waited_for_while_the_zygote_is_slow_to_report_it(launcher: AppLauncher,
                                                                          tmp_path: Path) -> None:
    """A loaded machine may not run the zygote for seconds after an app died: the exit code must still be
    the real one (the crash tests match "exited with code -9"), not EXIT_UNKNOWN. The zygote is stopped
    for 3 s here: the app's pidfd turns readable (a zombie, all its threads gone) within milliseconds of
    the SIGKILL, and the first launcher waited 1 s for the report, then gave up with EXIT_UNKNOWN."""
    app = start(launcher, tmp_path, "reviews-v1-0")
    os.kill(launcher.pid, signal.SIGSTOP)
    resume = threading.Timer(3.0, os.kill, (launcher.pid, signal.SIGCONT))
    resume.start()
    try:
        os.kill(app.pid, signal.SIGKILL)
        wait_until(lambda: app.exit_code is not None, EXIT_TIMEOUT_S, 0.05, message="no exit seen for the killed app")
        assert app.exit_code == -signal.SIGKILL
    finally:
        resume.join()
        os.kill(launcher.pid, signal.SIGCONT)
        app.stop()


def test_an_app_that_refuses_its_arguments_exits_as_the_interpreter_would(launcher: AppLauncher,
                                                                          tmp_path: Path) -> None:
    log = tmp_path / "bad.stderr.log"
    app = launcher.spawn(["--service", "reviews"], log, READY_TIMEOUT_S)  # --version and --instance missing
    assert app.wait(timeout=EXIT_TIMEOUT_S) == 2
    app.stdin.close()
    app.stdout.close()
    assert "the following arguments are required: --version, --instance" in log.read_text()


def test_apps_outlive_a_dead_zygote_and_still_stop(launcher: AppLauncher, tmp_path: Path) -> None:
    app = start(launcher, tmp_path, "reviews-v1-0")
    os.kill(launcher.pid, signal.SIGKILL)
    wait_until(lambda: launcher.exit_code() is not None, EXIT_TIMEOUT_S, 0.01, message="the zygote still runs")
    with httpx.Client(trust_env=False, timeout=10) as http:
        assert http.get(f"http://127.0.0.1:{app.http_port}/").status_code == 200
    app.stop()
    assert app.exit_code == EXIT_UNKNOWN  # nobody was left to tell its real code
    assert not process_exists(app.pid) or gone(app.pid)
    with pytest.raises(ProcessError, match=r"the echo-app zygote \(pid \d+\) exited"):
        start(launcher, tmp_path, "reviews-v1-1")


def test_closing_the_launcher_lets_the_zygote_leave_on_its_own(tmp_path: Path) -> None:
    launcher = AppLauncher(tmp_path / "zygote.stderr.log")
    start(launcher, tmp_path, "reviews-v1-0").stop()
    launcher.close()
    assert launcher.exit_code() == 0  # it saw EOF and left; not stopped by a signal


def test_a_killed_harness_takes_the_zygote_and_its_apps_with_it(tmp_path: Path) -> None:
    """SIGKILL leaves the harness no chance to clean up: the zygote must see EOF on its socket and the
    apps EOF on their stdin, and all of them leave."""
    script = textwrap.dedent(f"""
        import json, sys, time
        from pathlib import Path
        from harness.mesh.local.apps import AppProcess
        from harness.mesh.local.launcher import AppLauncher
        tmp = Path({str(tmp_path)!r})
        launcher = AppLauncher(tmp / "zygote.stderr.log")
        apps = [AppProcess.start("reviews", "v1", f"reviews-v1-{{i}}", workdir=tmp, ready_timeout={READY_TIMEOUT_S},
                                 launcher=launcher) for i in range(2)]
        print(json.dumps([launcher.pid, *(a.pid for a in apps)]), flush=True)
        time.sleep(600)
    """)
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as harness:
        try:
            assert harness.stdout is not None
            pids = json.loads(harness.stdout.readline())
            assert len(pids) == 3 and not any(gone(pid) for pid in pids)
        finally:
            harness.kill()
    wait_until(lambda: all(gone(pid) for pid in pids), EXIT_TIMEOUT_S, 0.05,
               message=lambda: f"still running after the harness was killed: {[p for p in pids if not gone(p)]}")


def test_apps_start_where_a_folder_named_harness_would_hide_the_installed_package(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """README's first command installs the checkout (``pip install .``) and runs from its root, where the
    checkout's own ``harness/`` has no ``sample_apps`` (setuptools maps that folder in). ``python -m``
    put the working directory first on sys.path, so every app failed with "No module named
    'harness.sample_apps'"; the children now run with ``-P``. Here the working directory holds a
    ``harness`` package with nothing in it."""
    shadow = tmp_path / "project"
    (shadow / "harness").mkdir(parents=True)
    (shadow / "harness" / "__init__.py").write_text('raise ImportError("the shadowing harness was imported")\n')
    monkeypatch.chdir(shadow)
    launcher = AppLauncher(tmp_path / "zygote.stderr.log")
    try:
        forked = start(launcher, tmp_path, "reviews-v1-0")
        fresh = AppProcess.start("reviews", "v1", "reviews-v1-1", workdir=tmp_path, ready_timeout=READY_TIMEOUT_S)
        forked.stop()
        fresh.stop()
    finally:
        launcher.close()

