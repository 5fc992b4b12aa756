"""Pydantic validation errors -> Issues located in the YAML (file, line, field path, fix).

Shared by every loader that validates YAML against a pydantic model (Istio objects, cases):
the file and line come from the YAML, the field path is written as in the YAML (aliases, list
indexes), and the message says what is wrong with the value given and what to write instead.
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from collections.abc import Iterable
from typing import Any

import pydantic
from pydantic_core import ErrorDetails

from harness.errors import Issue
from harness.yamlsource import Document, PathKey, format_path


def pydantic_issues(exc: pydantic.ValidationError, root: type[pydantic.BaseModel], doc: Document, obj: str | None) -> list[Issue]:
    """One Issue per pydantic error, located by ``doc``'s line map and named after ``obj``."""
    errors = [(tuple(k for k in error["loc"] if k != "[key]"), error) for error in exc.errors()]
    suggested = {(*path[:-1], _suggestion(str(path[-1]), root, path[:-1])) for path, e in errors if e["type"] == "extra_forbidden"}
    return [
        Issue(_message(error, root, path), doc.file, doc.line_of(path), obj, format_path(path) or None)
        for path, error in errors
        # a misspelt field is one mistake: "did you mean X?" says it, so "X is missing" would only repeat it
        if not (error["type"] == "missing" and path in suggested)
    ]


def as_tuples(value: Any) -> Any:
    """YAML lists become tuples, the model's sequence type (strict validation takes no lists)."""
    if isinstance(value, list):
        return tuple(as_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: as_tuples(v) for k, v in value.items()}
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
        return unknown_field_message(str(path[-1]), _known_fields(root, path[:-1]))
    if kind == "missing":
        return f"required field is missing; add {path[-1]} ({_describe(_field_type(root, path))})"
    if kind == "literal_error":
        choices = [str(c) for c in typing.get_args(_field_type(root, path))]
        close = difflib.get_close_matches(str(got), choices, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        return f"expected one of {', '.join(choices)}, got {show(got)}{hint}"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {show(got)}{_type_hint(kind, got)}"
    if kind in _BOUNDS:
        word, key = _BOUNDS[kind]
        bound = error.get("ctx", {}).get(key)
        return f"must be {word} {bound:g} (got {show(got)})" if isinstance(bound, float) else f"must be {word} {bound} (got {show(got)})"
    if kind == "value_error":
        text = str(error.get("ctx", {}).get("error", error["msg"]))
        if "(got " in text:
            return text
        what, sep, fix = text.partition("; ")
        return f"{what} (got {show(got)}){sep}{fix}"
    return f"{error['msg']} (got {show(got)})"


_BOUNDS = {
    "greater_than_equal": ("at least", "ge"),
    "greater_than": ("more than", "gt"),
    "less_than_equal": ("at most", "le"),
    "less_than": ("less than", "lt"),
}


def _type_hint(kind: str, got: Any) -> str:
    if kind == "string_type" and isinstance(got, int | float | bool):
        return f'; quote it: "{show(got)}"'
    if kind in ("int_type", "int_parsing") and isinstance(got, str) and got.strip().lstrip("-").isdigit():
        return f"; write it without quotes: {got.strip()}"
    if kind in ("tuple_type", "list_type") and isinstance(got, str | int | float):
        return f"; write a list, e.g. [{got}]"
    return ""


def unknown_field_message(name: str, known: Iterable[str]) -> str:
    close = closest_field(name, known)
    if close:
        return f"unknown field; did you mean {close}?"
    return f"unknown field; known fields here: {', '.join(sorted(known))}"


def closest_field(name: str, known: Iterable[str]) -> str | None:
    """The known field name closest to a misspelt ``name``, if any is close enough."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return close[0] if close else None


def _suggestion(name: str, root: type[pydantic.BaseModel], parent: PathKey) -> str | None:
    """The field an unknown ``name`` under ``parent`` is probably a misspelling of."""
    return closest_field(name, _known_fields(root, parent))


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


def show(value: Any) -> str:
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
