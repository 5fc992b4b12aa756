"""YAML documents with the source line of every field, so errors can point into the file.

PyYAML's composer keeps a start mark on every node; we build plain Python values from the node
tree and record, for every field path, the line it starts on. Paths are tuples of keys and list
indexes (``("spec", "http", 0, "route")``), the same tuples pydantic reports in its errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import CaseSyntaxError

PathKey = tuple[str | int, ...]


@dataclass(frozen=True)
class Document:
    """One YAML document: its plain value, where it came from, and the line of each field path."""

    value: Any
    file: str
    line: int
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, path: PathKey) -> int:
        """The line of ``path``, or of its nearest ancestor that has one (a missing field's parent)."""
        for end in range(len(path), -1, -1):
            found = self.lines.get(tuple(path[:end]))
            if found is not None:
                return found
        return self.line

    def sub(self, prefix: PathKey) -> Document:
        """The document rooted at ``prefix`` (an object inside a case), with its line map re-rooted."""
        value: Any = self.value
        for key in prefix:
            value = value[key]
        n = len(prefix)
        lines = {p[n:]: ln for p, ln in self.lines.items() if p[:n] == tuple(prefix)}
        return Document(value, self.file, self.line_of(prefix), lines)


def format_path(path: PathKey) -> str:
    """``("spec", "http", 0, "route")`` -> ``spec.http[0].route``, pasteable next to the YAML."""
    out = ""
    for key in path:
        if isinstance(key, int):
            out += f"[{key}]"
        else:
            out += f".{key}" if out else str(key)
    return out


def load_documents(text: str, file: str) -> list[Document]:
    """Parse every document in ``text``; a syntax error names the file, line and column."""
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = f", column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "not valid YAML"
        hint = "; indent with spaces, not tabs" if "\\t" in repr(problem) else ""
        raise CaseSyntaxError(f"{file}:{line}{col}: not valid YAML: {problem}{hint}") from exc
    except yaml.YAMLError as exc:
        raise CaseSyntaxError(f"{file}: not valid YAML: {exc}") from exc
    docs = []
    for node in nodes:
        if node is None:
            continue
        lines: dict[PathKey, int] = {}
        value = _build(node, (), lines)
        docs.append(Document(value, file, node.start_mark.line + 1, lines))
    return docs


def load_file(path: str | Path) -> list[Document]:
    """Read and parse a YAML file; a missing or unreadable file is a CaseSyntaxError naming it."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CaseSyntaxError(f"{p}: cannot read: {exc}") from exc
    return load_documents(text, str(p))


def _build(node: yaml.Node, path: PathKey, lines: dict[PathKey, int]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in _merged_pairs(node):
            key = _construct_scalar(key_node)
            out[key] = _build(value_node, (*path, key), lines)
            lines[(*path, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), lines) for i, item in enumerate(node.value)]
    return _construct_scalar(node)


def _construct_scalar(node: yaml.Node) -> Any:
    """A scalar's Python value with SafeLoader's resolution (ints, bools, nulls, floats)."""
    return yaml.SafeLoader("").construct_object(node, deep=True)


def _merged_pairs(node: yaml.MappingNode) -> Iterator[tuple[yaml.Node, yaml.Node]]:
    """Key/value node pairs, with YAML merge keys (``<<: *anchor``) expanded as PyYAML does."""
    for key_node, value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for src in sources:
                if isinstance(src, yaml.MappingNode):
                    yield from _merged_pairs(src)
        else:
            yield key_node, value_node
