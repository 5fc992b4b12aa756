"""A case's config on a mesh for a block of checks: one way to apply it and always revert it.

``runner.run_case``, the pytest plugin's ``CaseNode`` (set-up enters it, tear-down leaves it, through an
``ExitStack`` kept on the node) and load runs (``load/run.py``) all go through ``applied``, so each keeps
the same three properties: the topology is deployed before the config (``Mesh.deploy`` is a no-op for
the topology already running, so cases sharing one deploy it once); the config is reverted whatever
ends the block (a failure, an error, Ctrl-C); and the block gets the ``SyncToken`` of its apply, whose
``version`` stamps the responses served by this config (older ones are stale) and whose revert restores
exactly what was there before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from harness.case import Case
from harness.mesh.base import Mesh, SyncToken


@contextmanager
def applied(mesh: Mesh, case: Case) -> Iterator[SyncToken]:
    """``case``'s topology deployed and its config applied (every proxy ACKed) while the block runs; reverted
    after it. A failed deploy or apply raises before the block and leaves nothing to revert."""
    mesh.deploy(case.topology)
    token = mesh.apply(case.objects)
    try:
        yield token
    finally:
        mesh.revert(token)
