"""YAML documents with the source line of every field, so errors can point into the file.

PyYAML's composer keeps a start mark on every node; we build plain Python values from the node
tree and record, for every field path, the line it starts on. Paths are tuples of keys and list
indexes (``("spec", "http", 0, "route")``), the same tuples pydantic reports in its errors.

Only plain YAML is accepted: a node with any tag but the standard ones (``!!python/object/apply:``,
``!!set``, a custom ``!Ref``) is a CaseSyntaxError naming the file and line, never a value built
from it, and never silently read as the map or list under it. Aliases are expanded into copies,
so the number of nodes built and their depth are bounded (an alias bomb or a recursive alias is
an error, not a hang).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import CaseSyntaxError

PathKey = tuple[str | int, ...]

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_SCALAR_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "timestamp"))
MAX_NODES = 100_000
"""Nodes built per document (aliases count once per use): far above any case, far below an alias bomb."""
MAX_DEPTH = 200


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
        nodes = compose_all(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = f", column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "not valid YAML"
        hint = "; indent with spaces, not tabs" if "\\t" in repr(problem) else ""
        raise CaseSyntaxError(f"{file}:{line}{col}: not valid YAML: {problem}{hint}") from exc
    except yaml.reader.ReaderError as exc:
        at_line, at_column = _line_column(text[: exc.position])
        raise CaseSyntaxError(
            f"{file}:{at_line}, column {at_column}: not valid YAML: control character U+{exc.character:04X} is not allowed; "
            "remove it (inside a quoted string it can be written as an escape, e.g. \"\\x07\")"
        ) from exc
    except yaml.YAMLError as exc:
        raise CaseSyntaxError(f"{file}: not valid YAML: {exc}") from exc
    docs = []
    for node in nodes:
        if node is None:
            continue
        builder = _Builder(file)
        value = builder.build(node, ())
        docs.append(Document(value, file, node.start_mark.line + 1, builder.lines))
    return docs


def compose_all(text: str) -> list[yaml.Node]:
    """The documents' node trees, parsed by libyaml (C, several times faster; a suite's files took half a second
    in the pure-Python parser) when PyYAML has it. Text libyaml refuses is parsed again by the pure-Python
    parser, whose errors (line, column, problem) are the ones reported."""
    if yaml.__with_libyaml__:
        try:
            return list(yaml.compose_all(text, Loader=yaml.CSafeLoader))
        except yaml.YAMLError:
            pass
    return list(yaml.compose_all(text, Loader=yaml.SafeLoader))


def load_file(path: str | Path) -> list[Document]:
    """Read and parse a YAML file; a missing or unreadable file is a CaseSyntaxError naming it."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise CaseSyntaxError(f"{p}: cannot read: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CaseSyntaxError(_not_utf8(str(p), data, exc.start)) from exc
    return load_documents(text, str(p))


def _not_utf8(file: str, data: bytes, offset: int) -> str:
    """Where a file stops being UTF-8, and whether it is text in another encoding or not text at all."""
    line, col = _line_column(data[:offset])
    where = f"{file}:{line}, column {col}: not UTF-8 text (byte 0x{data[offset]:02x})"
    if b"\0" in data:
        return f"{where}; this is a binary file, not YAML: name a case file (YAML text)"
    return f"{where}; save the file as UTF-8 (it is probably Latin-1 or another legacy encoding)"


def _line_column(before: str | bytes) -> tuple[int, int]:
    """1-based line and column of the position just after ``before``."""
    newline = "\n" if isinstance(before, str) else b"\n"
    start = before.rfind(newline) + 1  # type: ignore[arg-type]
    return before.count(newline) + 1, len(before) - start + 1  # type: ignore[arg-type]


@dataclass
class _Builder:
    """Plain values from one document's node tree, with the line of every path; refuses what is not plain YAML."""

    file: str
    lines: dict[PathKey, int] = field(default_factory=dict)
    nodes: int = 0

    def build(self, node: yaml.Node, path: PathKey) -> Any:
        self._check(node, path)
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            _refuse_duplicate_keys(node, path, self.file)
            for key_node, value_node in _merged_pairs(node):
                key = _construct_scalar(key_node)
                out[key] = self.build(value_node, (*path, key))
                self.lines[(*path, key)] = key_node.start_mark.line + 1
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return _construct_scalar(node)

    def _check(self, node: yaml.Node, path: PathKey) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self._error(node, f"more than {MAX_NODES} values once aliases are expanded (an alias bomb?)")
        if len(path) > MAX_DEPTH:
            raise self._error(node, f"nested more than {MAX_DEPTH} levels deep (a recursive alias?)")
        allowed_by_kind: dict[type[yaml.Node], tuple[str, ...]] = {yaml.MappingNode: (_MAP_TAG,), yaml.SequenceNode: (_SEQ_TAG,)}
        allowed = allowed_by_kind.get(type(node), _SCALAR_TAGS)
        if node.tag not in allowed:
            raise self._error(node, f"the YAML tag {node.tag.replace('tag:yaml.org,2002:', '!!')!r} is not allowed: "
                                    "only plain YAML (maps, lists, strings, numbers, booleans, null); remove the tag")

    def _error(self, node: yaml.Node, problem: str) -> CaseSyntaxError:
        mark = node.start_mark
        return CaseSyntaxError(f"{self.file}:{mark.line + 1}, column {mark.column + 1}: {problem}")


def _refuse_duplicate_keys(node: yaml.MappingNode, path: PathKey, file: str) -> None:
    """PyYAML keeps the last of two equal keys without a word, which silently drops half of a case
    (two ``expect:`` in one check); Kubernetes refuses such YAML too. Merged keys (``<<``) may be overridden."""
    first: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = _construct_scalar(key_node)
        line = key_node.start_mark.line + 1
        if key in first:
            raise CaseSyntaxError(f"{file}:{line}: {format_path((*path, key))}: duplicate key (first at line {first[key]}); "
                                  "YAML would keep only the last one: merge the two or remove one")
        first[key] = line


def _construct_scalar(node: yaml.Node) -> Any:
    """A scalar's Python value with SafeLoader's resolution (ints, bools, nulls, floats): a constructor alone,
    not a whole loader (reader, scanner, parser) for every scalar."""
    return yaml.constructor.SafeConstructor().construct_object(node, deep=True)


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
