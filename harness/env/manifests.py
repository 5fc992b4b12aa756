"""Istio YAML for ``apply``/``delete``: parsed and validated exactly as ``mesh-harness run`` does.

The command validates the files before it calls the daemon (so a mistake exits 2 with nothing
applied, and istiod's warnings print on the user's terminal); the daemon parses the same text
again from what the command sent, since typed objects do not cross the API. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import CaseSyntaxError, Issue, ValidationError
from harness.istio.load import load_objects
from harness.istio.model import IstioObject
from harness.istio.validate import validate_objects
from harness.yamlsource import load_documents


@dataclass(frozen=True)
class Manifest:
    """One file's text under the name errors should show (the path as the user typed it)."""

    name: str
    text: str


@dataclass(frozen=True)
class Loaded:
    objects: tuple[IstioObject, ...]
    warnings: tuple[Issue, ...]


def read_manifests(paths: Sequence[str]) -> list[Manifest]:
    out = []
    for path in paths:
        try:
            out.append(Manifest(path, Path(path).read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            raise CaseSyntaxError(f"{path}: cannot read: {exc}") from exc
    return out


def load_manifests(manifests: Sequence[Manifest], *, for_local_mesh: bool = True) -> Loaded:
    """Every object of every file; every issue (schema, istiod's rules, local-mesh support) at once.

    An object named twice (same kind, namespace and name) is an error: which one would win is
    not obvious from the files.
    """
    from harness.mesh.local.translate import (
        unsupported_issues,  # the translator's support table
    )

    docs = [d for m in manifests for d in load_documents(m.text, m.name)]
    objects = load_objects(docs)
    findings = validate_objects(objects)
    issues = list(findings.errors) + (unsupported_issues(objects) if for_local_mesh else [])
    seen: dict[tuple[str, str, str], IstioObject] = {}
    for obj in objects:
        first = seen.setdefault(obj.key, obj)
        if first is not obj:
            where = f"{first.source.file}:{first.source.line}" if first.source else "another document"
            issues.append(Issue(f"defined twice (first at {where}); keep one", obj.source.file if obj.source else None,
                                obj.source.line if obj.source else None, obj.ref))
    if not objects and not issues:
        names = ", ".join(m.name for m in manifests)
        issues.append(Issue("no Istio objects in these files; expected VirtualService or DestinationRule documents",
                            names))
    if issues:
        raise ValidationError(issues)
    return Loaded(tuple(objects), tuple(findings.warnings))
