"""Which loopback address each client workload of the local mesh sends from."""

from __future__ import annotations

from harness.mesh.local.mesh import source_address
from harness.topology import Client, Topology

TWO = Topology(clients=(Client("client"), Client("other", labels=(("app", "other"),))))


def test_source_address_is_127_0_0_1_unless_asked_for_distinct_ones() -> None:
    assert [source_address(TWO, c, distinct=False) for c in ("client", "other")] == ["127.0.0.1", "127.0.0.1"]


def test_source_address_distinct_follows_the_client_order() -> None:
    assert [source_address(TWO, c, distinct=True) for c in ("client", "other")] == ["127.0.0.1", "127.0.0.2"]


def test_source_address_set_in_the_topology_wins() -> None:
    pinned = Topology(clients=(Client("client", source_ip="127.0.0.9"), Client("other")))
    assert source_address(pinned, "client", distinct=False) == "127.0.0.9"
    assert source_address(pinned, "other", distinct=True) == "127.0.0.2"
