"""Locust's command lines: one headless process, or a master and its workers (Locust's distributed mode). Pure.

``--exit-code-on-error 0`` everywhere: failed requests are the harness's to judge, so a non-zero
exit means Locust itself failed. A master does not take ``-t``: it stops the run itself after
``--mesh-run-time`` and waits for every worker's last records (``relay.py`` says why).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path, PurePath

from harness.loadspec import LoadSpec

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
GRPC_LOCUSTFILE = Path(__file__).with_name("grpc_locustfile.py")


def locustfile_for(protocol: str) -> Path:
    """The shipped locustfile whose user speaks ``protocol`` (``MeshUser``: HTTP/1.1, ``MeshGrpcUser``: gRPC)."""
    return GRPC_LOCUSTFILE if protocol == "grpc" else LOCUSTFILE


@dataclass(frozen=True)
class LocustOutputs:
    """Locust's own reports, written where the user asks: ``--csv PREFIX`` and ``--html FILE``."""

    csv_prefix: str | None = None
    html: str | None = None


NO_OUTPUTS = LocustOutputs()


#: Locust's own default master port, for workers on other machines to find.
DEFAULT_MASTER_PORT = 5557


@dataclass(frozen=True)
class Distribution:
    """How a run spreads over Locust processes (all zero: one process, as before).

    ``local_workers`` run on this machine; ``remote_workers`` are expected from other machines
    (``mesh-harness load --worker``), connecting to the master at ``bind_host:port``; ``port`` 0
    takes a free one (local workers only: remote ones must be told it).
    """

    local_workers: int = 0
    remote_workers: int = 0
    bind_host: str = "127.0.0.1"
    port: int = 0

    @property
    def workers(self) -> int:
        return self.local_workers + self.remote_workers

    @property
    def local_master_host(self) -> str:
        """Where this machine's workers reach the master (any-address binds are reached on loopback)."""
        return "127.0.0.1" if self.bind_host in ("*", "0.0.0.0", "") else self.bind_host


ONE_PROCESS = Distribution()


@dataclass(frozen=True)
class RunFiles:
    """The files one run shares with its Locust processes (in its temp dir), and the locustfile they run."""

    plan: Path
    records: Path
    ledger: Path
    locustfile: Path = LOCUSTFILE


def _locust(locustfile: PurePath) -> list[str]:
    return [sys.executable, "-m", "locust", "-f", str(locustfile), "--exit-code-on-error", "0"]


def _headless(files: RunFiles, host: str, spec: LoadSpec, outputs: LocustOutputs) -> list[str]:
    command = [*_locust(files.locustfile), "--headless", "--only-summary", "-u", str(spec.users), "-r", f"{spec.rate:g}",
               "--stop-timeout", "0", "--host", host, "--mesh-plan", str(files.plan), "--mesh-records", str(files.records)]
    if outputs.csv_prefix:
        command += ["--csv", str(Path(outputs.csv_prefix).absolute())]
    if outputs.html:
        command += ["--html", str(Path(outputs.html).absolute())]
    return command


def single_command(files: RunFiles, host: str, spec: LoadSpec, outputs: LocustOutputs) -> list[str]:
    """One headless Locust process that sends and writes the records itself."""
    return [*_headless(files, host, spec, outputs), "-t", f"{max(1, round(spec.duration_s))}s"]


def master_command(files: RunFiles, host: str, spec: LoadSpec, outputs: LocustOutputs, *, bind_host: str,
                   port: int, workers: int, wait_for_workers_s: float) -> list[str]:
    """A headless master on ``bind_host:port`` that starts once ``workers`` connected (giving up after
    ``wait_for_workers_s``), writes every worker's records and the ledger of what each delivered."""
    return [*_headless(files, host, spec, outputs), "--master", "--master-bind-host", bind_host,
            "--master-bind-port", str(port), "--expect-workers", str(workers),
            "--expect-workers-max-wait", f"{wait_for_workers_s:g}", "--mesh-run-time", f"{spec.duration_s:g}",
            "--mesh-workers", str(files.ledger)]


def worker_command(master_host: str, port: int, name: str = "", *, locustfile: PurePath = LOCUSTFILE, own_host: str = "",
                   config_version: int | None = None) -> list[str]:
    """A worker of the master at ``master_host:port``, named ``name`` in reports (default host:pid).

    It sends to the host the master gives, or with ``own_host`` to its own mesh's sidecar listener
    (a worker on another machine), whose applied version of the case is ``config_version``.
    ``locustfile`` may be a path in another machine's file system (a worker pod's image).
    """
    command = [*_locust(locustfile), "--worker", "--master-host", master_host, "--master-port", str(port)]
    if name:
        command += ["--mesh-worker-name", name]
    if own_host:
        command += ["--mesh-own-host", own_host]
    if config_version is not None:
        command += ["--mesh-config-version", str(config_version)]
    return command
