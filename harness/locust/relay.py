"""Records from Locust workers to their master, over Locust's own connection (distributed runs).

Imported only by the locustfile (it imports gevent and Locust). A worker buffers its records and
sends them to the master with ``runner.send_message`` every ``FLUSH_S`` and, as its last batch
(``final``), from its ``test_stop`` listener; the master writes them to its records file and keeps
a ``WorkerLedger``.

Why messages and why the master stops the run itself (read from Locust 2.47's ``runners.py`` and
``main.py``): on ``-t``, a headless master calls ``runner.quit()``, which skips the "stop" round
(``stop(send_stop_to_client=False)``), sends "quit" and gives the workers a fixed 0.5 s for their
last report before it exits, so a worker's last batch may arrive after the master is gone. Instead
the master stops the run after ``--mesh-run-time`` with ``runner.stop()``: it sends "stop" and
waits (at most 60 s) until its workers' user counts are 0, which ``client_stopped`` makes so; a
worker fires ``test_stop`` (which sends its final batch) *before* it sends ``client_stopped``, over
the same ZeroMQ connection, which keeps the order. But a worker's periodic stats report can also
say 0 users a moment before its final batch, and ``stop()`` polls once a second, so the master
then waits for the final batch of every worker that connected (``FINAL_WAIT_S``: a worker that
died never sends one, and is reported lost) before it closes the records and quits. Files per worker would do
for workers on this machine only; messages work for workers on other machines the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import gevent
from locust.runners import MasterRunner, WorkerRunner

from harness.locust.wire import RecordBatch, WorkerLedger

RECORDS_MESSAGE = "mesh-harness-records"
#: How often a worker sends what it has (bounds the master's memory and the progress shown).
FLUSH_S = 1.0
#: How long a stopped master waits for final batches still on their way (the whole wait when a worker died).
FINAL_WAIT_S = 10.0


class WorkerRelay:
    """On a worker: the records sink of its test, sent to the master in batches."""

    def __init__(self, runner: WorkerRunner, name: str) -> None:
        self._runner = runner
        self._name = name
        self._lines: list[str] = []
        self._send(final=False)  # an empty batch: the master knows this worker's name from the start
        self._flusher = gevent.spawn(self._flush_every)

    def write(self, line: str) -> None:
        self._lines.append(line)

    def close(self) -> None:
        """Send what is left as the final batch (``test_stop``: the users have stopped)."""
        self._flusher.kill(block=True)
        self._send(final=True)

    def _flush_every(self) -> None:
        while True:
            gevent.sleep(FLUSH_S)
            if self._lines:
                self._send(final=False)

    def _send(self, *, final: bool) -> None:
        lines, self._lines = "".join(self._lines), []
        self._runner.send_message(RECORDS_MESSAGE, RecordBatch(self._name, lines, final).to_message())


class MasterRelay:
    """On the master: writes every worker's batches to the records file and the ledger at the end."""

    def __init__(self, runner: MasterRunner, records: IO[str], ledger_path: str) -> None:
        self._records: IO[str] | None = records
        self._ledger = WorkerLedger()
        self._ledger_path = ledger_path
        runner.register_message(RECORDS_MESSAGE, self._on_batch)
        runner.environment.events.worker_connect.add_listener(self._ledger.connected)  # type: ignore[no-untyped-call]

    def _on_batch(self, environment: Any, msg: Any, **_kwargs: Any) -> None:
        batch = RecordBatch.from_message(msg.data)
        self._ledger.received(msg.node_id, batch)
        if self._records is not None:
            self._records.write(batch.lines)

    def finish(self, runner: MasterRunner) -> None:
        """End the run so that every worker's last batch is in: stop (waits for the workers), wait
        for final batches still on their way, close, quit."""
        runner.stop()
        for _ in range(int(FINAL_WAIT_S / 0.1)):
            if self._ledger.all_finished():
                break
            gevent.sleep(0.1)
        self.close()
        runner.quit()

    def close(self) -> None:
        """Close the records file and write the ledger (once; ``finish`` and ``quitting`` both call it)."""
        if self._records is None:
            return
        self._records.close()
        self._records = None
        if self._ledger_path:
            Path(self._ledger_path).write_text(self._ledger.to_json())

