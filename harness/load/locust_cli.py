"""Locust's command lines: one headless process, or a master and its workers (Locust's distributed mode). Pure.

``--exit-code-on-error 0`` everywhere: failed requests are the harness's to judge, so a non-zero
exit means Locust itself failed. A master does not take ``-t``: it stops the run itself after
``--mesh-run-time`` and waits for every worker's last records (``relay.py`` says why).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from harness.load.schema import LoadSpec

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


@dataclass(frozen=True)
class LocustOutputs:
    """Locust's own reports, written where the user asks: ``--csv PREFIX`` and ``--html FILE``."""

    csv_prefix: str | None = None
    html: str | None = None


NO_OUTPUTS = LocustOutputs()


@dataclass(frozen=True)
class RunFiles:
    """The files one run shares with its Locust processes (in its temp dir)."""

    plan: Path
    records: Path
    ledger: Path


def _locust() -> list[str]:
    return [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--exit-code-on-error", "0"]


def _headless(files: RunFiles, host: str, spec: LoadSpec, outputs: LocustOutputs) -> list[str]:
    command = [*_locust(), "--headless", "--only-summary", "-u", str(spec.users), "-r", f"{spec.rate:g}",
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


def worker_command(master_host: str, port: int, name: str) -> list[str]:
    """A worker of the master at ``master_host:port``, named ``name`` in reports; it sends to the host the master gives."""
    return [*_locust(), "--worker", "--master-host", master_host, "--master-port", str(port),
            "--mesh-worker-name", name]
