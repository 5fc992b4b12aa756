"""YAML documents -> typed Istio objects, with one precise issue per bad field.

Pydantic does the type checking (strictly: ``port: "80"`` is not an integer in a CRD either);
this module turns its errors into ``Issue``s a case author can act on: the file and line from the
YAML, the object (``VirtualService/reviews``), the camelCase field path as written in the YAML,
what is wrong with the value given, and what to write instead. Every issue of every document is
collected and raised once.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pydantic

from harness.errors import Issue, ValidationError, load_all
from harness.istio.model import API_VERSIONS, FROM_YAML, KINDS, IstioObject, Source
from harness.schema_issues import (
    as_tuples,
    closest_field,
    pydantic_issues,
    show,
    unknown_field_message,
)
from harness.yamlsource import Document, PathKey, format_path, load_file

#: Top-level keys of a Kubernetes object; ``status`` is server output, accepted and ignored.
_ENVELOPE = ("apiVersion", "kind", "metadata", "spec")
_IGNORED_TOP = ("status",)


def load_manifest(path: str | Path) -> list[IstioObject]:
    """Every Istio object in a YAML file of one or more documents; raises ``ValidationError`` with all issues."""
    return load_objects(load_file(path))


def load_objects(docs: Iterable[Document]) -> list[IstioObject]:
    """One object per document; every issue of every document is raised at once as ``ValidationError``."""
    return load_all(docs, lambda doc: [load_object(doc)])


def load_object(doc: Document) -> IstioObject:
    """The typed object in ``doc``; raises ``ValidationError`` listing every bad field."""
    value = doc.value
    if not isinstance(value, dict):
        issue = Issue(
            f"expected a Kubernetes object (a mapping with {', '.join(_ENVELOPE)}), got {show(value)}",
            file=doc.file,
            line=doc.line,
        )
        raise ValidationError([issue])
    obj_ref = _object_ref(value)
    issues: list[Issue] = []

    def add(path: PathKey, message: str) -> None:
        issues.append(Issue(message, doc.file, doc.line_of(path), obj_ref, format_path(path) or None))

    cls = _check_envelope(value, add)
    if cls is None:
        raise ValidationError(issues)
    body = {k: as_tuples(v) for k, v in value.items() if k in _ENVELOPE}
    body["source"] = Source(file=doc.file, line=doc.line, lines=doc.lines)
    # a misspelt top-level key ("specs") is reported once, as the unknown field with its did-you-mean
    misspelt = {closest_field(str(k), _ENVELOPE) for k in value if k not in _ENVELOPE and k not in _IGNORED_TOP}
    try:
        obj = cls.model_validate(body, strict=True, context={FROM_YAML: True})
    except pydantic.ValidationError as exc:
        issues.extend(i for i in pydantic_issues(exc, cls, doc, obj_ref)
                      if not (i.path in misspelt and i.message.startswith("required field is missing")))
    if issues:
        raise ValidationError(sorted(issues, key=lambda i: i.line or 0))
    return obj


def _check_envelope(value: dict[Any, Any], add: typing.Callable[[PathKey, str], None]) -> type[IstioObject] | None:
    """The model class for ``kind``, after checking apiVersion and top-level keys; None if unusable."""
    for key in value:
        if key not in _ENVELOPE and key not in _IGNORED_TOP:
            add((key,), unknown_field_message(str(key), _ENVELOPE))
    kind = value.get("kind")
    api_version = value.get("apiVersion")
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if "kind" not in value:
        add(("kind",), f"required field is missing; add kind: one of {', '.join(KINDS)}")
    elif cls is None:
        add(("kind",), f"unsupported kind (got {show(kind)}); the harness supports {', '.join(KINDS)}")
    if "apiVersion" not in value:
        add(("apiVersion",), f"required field is missing; add apiVersion: {API_VERSIONS[0]}")
        return None
    if api_version not in API_VERSIONS:
        add(("apiVersion",), f"unsupported apiVersion (got {show(api_version)}); use one of {', '.join(API_VERSIONS)}")
        return None
    return cls


def _object_ref(value: dict[Any, Any]) -> str:
    kind = value.get("kind")
    meta = value.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return f"{kind if isinstance(kind, str) else '?'}/{name if isinstance(name, str) else '?'}"
