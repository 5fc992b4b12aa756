"""The plan to move a cluster from one Istio object set to another (pure).

``plan`` says what to apply and what to delete so that the cluster holds exactly the wanted objects
(``apply`` adds or replaces, ``revert`` restores). The objects themselves are rendered by
``harness.istio.manifest.to_manifest``.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.istio.model import IstioObject

Key = tuple[str, str, str]


@dataclass(frozen=True)
class Plan:
    """Objects to apply (new or changed) and keys to delete, to go from ``current`` to ``wanted``."""

    apply: tuple[IstioObject, ...]
    delete: tuple[IstioObject, ...]


def plan(current: dict[Key, IstioObject], wanted: dict[Key, IstioObject]) -> Plan:
    return Plan(
        apply=tuple(o for k, o in wanted.items() if current.get(k) != o),
        delete=tuple(o for k, o in current.items() if k not in wanted),
    )
