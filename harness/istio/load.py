"""YAML documents -> typed Istio objects, with one precise issue per bad field.

Pydantic does the type checking (strictly: ``port: "80"`` is not an integer in a CRD either);
this module turns its errors into ``Issue``s a case author can act on: the file and line from the
YAML, the object (``VirtualService/reviews``), the camelCase field path as written in the YAML,
what is wrong with the value given, and what to write instead. Every issue of every document is
collected and raised once.
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pydantic
from pydantic_core import ErrorDetails

from harness.errors import Issue, ValidationError
from harness.istio.model import API_VERSIONS, FROM_YAML, KINDS, IstioObject, Source
from harness.yamlsource import Document, PathKey, format_path, load_file

#: Top-level keys of a Kubernetes object; ``status`` is server output, accepted and ignored.
_ENVELOPE = ("apiVersion", "kind", "metadata", "spec")
_IGNORED_TOP = ("status",)


def load_manifest(path: str | Path) -> list[IstioObject]:
    """Every Istio object in a YAML file of one or more documents; raises ``ValidationError`` with all issues."""
    return load_objects(load_file(path))


def load_objects(docs: Iterable[Document]) -> list[IstioObject]:
    """One object per document; every issue of every document is raised at once as ``ValidationError``."""
    objects: list[IstioObject] = []
    issues: list[Issue] = []
    for doc in docs:
        try:
            objects.append(load_object(doc))
        except ValidationError as exc:
            issues.extend(exc.issues)
    if issues:
        raise ValidationError(issues)
    return objects


def load_object(doc: Document) -> IstioObject:
    """The typed object in ``doc``; raises ``ValidationError`` listing every bad field."""
    value = doc.value
    if not isinstance(value, dict):
        issue = Issue(
            f"expected a Kubernetes object (a mapping with {', '.join(_ENVELOPE)}), got {_show(value)}",
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
    body = {k: _freeze(v) for k, v in value.items() if k in _ENVELOPE}
    body["source"] = Source(file=doc.file, line=doc.line, lines=doc.lines)
    try:
        obj = cls.model_validate(body, strict=True, context={FROM_YAML: True})
    except pydantic.ValidationError as exc:
        for error in exc.errors():
            path = tuple(k for k in error["loc"] if k != "[key]")
            add(path, _message(error, cls, path))
    if issues:
        raise ValidationError(sorted(issues, key=lambda i: i.line or 0))
    return obj


def _check_envelope(value: dict[Any, Any], add: typing.Callable[[PathKey, str], None]) -> type[IstioObject] | None:
    """The model class for ``kind``, after checking apiVersion and top-level keys; None if unusable."""
    for key in value:
        if key not in _ENVELOPE and key not in _IGNORED_TOP:
            add((key,), _unknown_field(str(key), _ENVELOPE))
    kind = value.get("kind")
    api_version = value.get("apiVersion")
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if "kind" not in value:
        add((), f"required field is missing; add kind: one of {', '.join(KINDS)}")
    elif cls is None:
        add(("kind",), f"unsupported kind (got {_show(kind)}); the harness supports {', '.join(KINDS)}")
    if "apiVersion" not in value:
        add((), f"required field is missing; add apiVersion: {API_VERSIONS[0]}")
    elif api_version not in API_VERSIONS:
        add(("apiVersion",), f"unsupported apiVersion (got {_show(api_version)}); use one of {', '.join(API_VERSIONS)}")
        return None
    return cls


def _object_ref(value: dict[Any, Any]) -> str:
    kind = value.get("kind")
    meta = value.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return f"{kind if isinstance(kind, str) else '?'}/{name if isinstance(name, str) else '?'}"


def _freeze(value: Any) -> Any:
    """YAML lists become tuples, the model's sequence type (strict validation takes no lists)."""
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return {k: _freeze(v) for k, v in value.items()}
    return value


# --- messages ---------------------------------------------------------------------------------

_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "tuple_type": "a list",
    "list_type": "a list",
    "datetime_type": "an RFC 3339 timestamp",
}


def _message(error: ErrorDetails, root: type[pydantic.BaseModel], path: PathKey) -> str:
    kind = error["type"]
    got = error.get("input")
    if kind == "extra_forbidden":
        return _unknown_field(str(path[-1]), _known_fields(root, path[:-1]))
    if kind == "missing":
        return f"required field is missing; add {path[-1]} ({_describe(_field_type(root, path))})"
    if kind == "literal_error":
        choices = [str(c) for c in typing.get_args(_field_type(root, path))]
        close = difflib.get_close_matches(str(got), choices, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        return f"expected one of {', '.join(choices)}, got {_show(got)}{hint}"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {_show(got)}{_type_hint(kind, got)}"
    if kind == "value_error":
        text = str(error.get("ctx", {}).get("error", error["msg"]))
        if "(got " in text:
            return text
        what, sep, fix = text.partition("; ")
        return f"{what} (got {_show(got)}){sep}{fix}"
    return f"{error['msg']} (got {_show(got)})"


def _type_hint(kind: str, got: Any) -> str:
    if kind == "string_type" and isinstance(got, int | float | bool):
        return f'; quote it: "{_show(got)}"'
    if kind in ("tuple_type", "list_type") and isinstance(got, str | int | float):
        return f"; write a list, e.g. [{got}]"
    return ""


def _unknown_field(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    if close:
        return f"unknown field; did you mean {close[0]}?"
    return f"unknown field; known fields here: {', '.join(sorted(known))}"


def _field_type(root: type[pydantic.BaseModel], path: PathKey) -> Any:
    """The model's type at a YAML ``path`` (alias names, list indexes, map keys), unwrapped."""
    node: Any = root
    for key in path:
        node = _step(node, key)
    return _unwrap(node)


def _describe(node: Any) -> str:
    origin = typing.get_origin(node)
    if origin is tuple:
        return "a list"
    if origin is dict or (isinstance(node, type) and issubclass(node, pydantic.BaseModel)):
        return "a mapping"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(node, "a value")


def _known_fields(root: type[pydantic.BaseModel], path: PathKey) -> list[str]:
    """The YAML field names of the model at ``path`` (aliases), for did-you-mean suggestions."""
    node = _field_type(root, path)
    if isinstance(node, type) and issubclass(node, pydantic.BaseModel):
        return [f.alias or name for name, f in node.model_fields.items() if name != "source"]
    return []


def _step(node: Any, key: str | int) -> Any:
    node = _unwrap(node)
    if isinstance(node, type) and issubclass(node, pydantic.BaseModel):
        for name, field in node.model_fields.items():
            if key in (field.alias, name):
                return field.annotation
        return None
    args = typing.get_args(node)
    origin = typing.get_origin(node)
    if origin is tuple and args:
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    return None


def _unwrap(node: Any) -> Any:
    """Strip ``Annotated`` and ``X | None`` down to ``X``."""
    while True:
        origin = typing.get_origin(node)
        if origin is typing.Annotated:
            node = typing.get_args(node)[0]
        elif origin in (typing.Union, types.UnionType):
            rest = [a for a in typing.get_args(node) if a is not type(None)]
            if len(rest) != 1:
                return node
            node = rest[0]
        else:
            return node


def _show(value: Any) -> str:
    """A value as the user wrote it in YAML: strings quoted, containers summarized."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return str(value)
