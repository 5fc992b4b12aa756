"""Per-proxy, per-xDS-type sync state, in the words of ``istioctl proxy-status``. Pure.

The control plane records, per node and type, the version last sent, last ACKed and last NACKed
(``xds.TypeStatus``). A type is SYNCED when the node ACKed what was last sent and that is the
mesh's current config version; NACK when it rejected the version last sent (Envoy keeps running
its previous config); STALE when a push is not answered yet or not made yet; NOT SENT when the
node never received the type. A NACK that a later push healed is kept as a note on the row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.mesh.local import typeurls

if TYPE_CHECKING:  # xds imports grpc; the CLI side only needs SyncRow
    from harness.mesh.local.xds import TypeStatus

SHORT_TYPES = {typeurls.CLUSTER: "CDS", typeurls.ENDPOINT: "EDS", typeurls.LISTENER: "LDS", typeurls.ROUTE: "RDS"}


@dataclass(frozen=True)
class SyncRow:
    node: str
    type: str
    state: str
    sent: str
    acked: str
    note: str


def sync_rows(node: str, statuses: Mapping[str, TypeStatus], current_version: int | None) -> list[SyncRow]:
    """One row per xDS type the mesh serves (CDS, EDS, LDS, RDS, in push order). ``current_version``:
    the mesh's config version, when the versions sent are the mesh's (builtin plane); None for istiod,
    whose versions are its own push versions."""
    return [sync_row(node, url, statuses.get(url), current_version) for url in typeurls.PUSH_ORDER]


def sync_row(node: str, type_url: str, s: TypeStatus | None, current_version: int | None) -> SyncRow:
    short = SHORT_TYPES.get(type_url, type_url)
    if s is None or s.sent_version is None:
        return SyncRow(node, short, "NOT SENT", "-", "-", "")
    current = s.sent_version if current_version is None else str(current_version)
    nack = f"NACK of version {s.nack_version}: {s.nack_detail}" if s.nack_version is not None else ""
    if s.nack_version is not None and s.nack_version == s.sent_version:
        state, note = "NACK", nack
    elif s.acked_version != s.sent_version:
        state, note = "STALE", f"version {s.sent_version} sent, not ACKed yet"
    elif s.sent_version != current:
        state, note = "STALE", f"mesh is at version {current}, not pushed to this node yet"
    else:
        state, note = "SYNCED", nack and f"earlier {nack}"
    return SyncRow(node, short, state, s.sent_version, s.acked_version or "-", note)
