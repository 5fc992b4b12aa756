"""One LocalMesh for the whole session (Envoy and the apps start once), reset after every test.

``local_mesh`` is the session's mesh with the default topology; ``clean_mesh`` hands it to a test
and afterwards puts back the default topology and an empty config, so tests do not see each
other's VirtualServices. ``make_objects`` turns YAML text into Istio objects the way a case file
would be loaded (same loader, same source lines).
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator

import pytest

from harness.istio.load import load_objects
from harness.istio.model import IstioObject
from harness.mesh.base import SyncToken
from harness.mesh.local.mesh import LocalMesh
from harness.topology import DEFAULT_TOPOLOGY
from harness.yamlsource import load_documents

MakeObjects = Callable[[str], list[IstioObject]]

# A suite started as a background job of a non-interactive shell (``pytest &`` in a script) inherits
# SIGINT ignored, and so would every harness it starts: the tests that press Ctrl-C would find it deaf
# (a fresh-clone CI run started that way failed 7 of them). exec resets a caught signal to the default,
# so catching SIGINT here gives the processes these tests start what a terminal gives them.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def local_mesh() -> Iterator[LocalMesh]:
    with LocalMesh() as mesh:
        mesh.deploy(DEFAULT_TOPOLOGY)
        yield mesh


@pytest.fixture(scope="session")
def empty_config(local_mesh: LocalMesh) -> SyncToken:
    """A token whose revert restores "no Istio objects at all" (the session starts with none)."""
    return local_mesh.apply([])


@pytest.fixture
def clean_mesh(local_mesh: LocalMesh, empty_config: SyncToken) -> Iterator[LocalMesh]:
    """The session mesh; after the test: default topology again, and no config."""
    yield local_mesh
    local_mesh.revert(empty_config)  # first: a ServiceEntry may need the test's external app to translate
    local_mesh.deploy(DEFAULT_TOPOLOGY)


@pytest.fixture(scope="session")
def make_objects() -> MakeObjects:
    def make(text: str) -> list[IstioObject]:
        return load_objects(load_documents(text, "<test>"))

    return make
