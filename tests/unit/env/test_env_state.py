"""State files: names, private modes, round trip, stale detection and the missing-environment message."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from harness import paths
from harness.env import state
from harness.errors import CaseError, MeshError
from harness.mesh.childproc import python_module


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(paths.HOME_VARIABLE, str(tmp_path))
    return tmp_path


def make_state(pid: int, name: str = "default") -> state.EnvState:
    return state.EnvState(name=name, pid=pid, api_port=1234, token="t0k", mesh="local", started=1.5)


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(10)
    return proc.pid


def test_env_dir_under_home_variable_or_cache(home: Path) -> None:
    assert state.env_dir("a") == home / "envs" / "a"
    assert state.env_dir("b", environ={"HOME": "/h"}).parts[-4:] == (".cache", "mesh-harness", "envs", "b")


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "-x", "x" * 64, "a b"])
def test_env_name_refused_when_not_a_plain_directory_name(bad: str) -> None:
    with pytest.raises(CaseError, match="--name: expected letters"):
        state.check_name(bad)


def test_env_state_round_trip_with_private_modes(home: Path) -> None:
    path = state.make_env_dir(state.env_dir("x"))
    state.write_state(path, make_state(42, "x"))
    assert state.read_state(path) == make_state(42, "x")
    assert stat.S_IMODE((path / state.STATE_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert [p.name for p in path.iterdir()] == [state.STATE_FILE]  # no temp file left


def test_env_state_missing_is_none_and_garbage_is_an_error(home: Path) -> None:
    path = state.make_env_dir(state.env_dir("x"))
    assert state.read_state(path) is None
    (path / state.STATE_FILE).write_text("{not json")
    with pytest.raises(MeshError, match="unreadable state file .* mesh-harness down --name x"):
        state.read_state(path)


def test_env_is_daemon_checks_the_command_line() -> None:
    argv = [*python_module(state.DAEMON_MODULE), "--name", "a", "--dir", "/d"]
    assert state.is_daemon(7, "a", cmdline=lambda pid: argv)
    assert not state.is_daemon(7, "b", cmdline=lambda pid: argv)
    assert not state.is_daemon(7, "a", cmdline=lambda pid: ["/usr/bin/vim", "--name", "a"])  # a reused pid
    assert not state.is_daemon(7, "a", cmdline=lambda pid: None)


def test_env_proc_cmdline_of_self_and_of_the_dead() -> None:
    assert state.proc_cmdline(os.getpid()) is not None
    assert state.proc_cmdline(dead_pid()) is None


def test_env_process_gone_reaps_our_child() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    pid = proc.pid
    proc.wait(10)
    assert state.process_gone(pid)
    assert not state.process_gone(os.getpid())


def test_env_stale_state_is_cleaned_and_says_so(home: Path) -> None:
    path = state.make_env_dir(state.env_dir("old"))
    pid = dead_pid()
    state.write_state(path, make_state(pid, "old"))
    said: list[str] = []
    with pytest.raises(state.EnvNotRunning) as info:
        state.live_state("old", on_stale=said.append)
    assert said == [f"environment 'old' was stale (its daemon, pid {pid}, is gone); cleaned up {path}"]
    assert str(info.value) == "no environment 'old' is running; start one with: mesh-harness up --name old"
    assert not path.exists()


def test_env_missing_default_says_how_to_start(home: Path) -> None:
    with pytest.raises(state.EnvNotRunning, match=r"^no environment 'default' is running; start one with: mesh-harness up$"):
        state.live_state("default", on_stale=lambda m: pytest.fail(m))


def test_env_second_start_of_one_name_is_refused_while_the_first_runs(home: Path) -> None:
    path = state.make_env_dir(state.env_dir("x"))
    busy = pytest.raises(MeshError, match="environment 'x' is being started by another `mesh-harness up`")
    with state.starting(path, "x"), busy, state.starting(path, "x"):
        pass
    with state.starting(path, "x"):  # released
        pass
