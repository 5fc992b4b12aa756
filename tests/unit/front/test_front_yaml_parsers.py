"""libyaml (C) and PyYAML's pure-Python parser read every YAML file this repository holds alike.

``yamlsource`` parses with libyaml when PyYAML has it and falls back to the Python parser for text libyaml
refuses (whose errors are the ones reported), so the two must agree on what they both accept: the same
values with the same line of every path, or both refuse.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness import yamlsource
from harness.errors import CaseSyntaxError

ROOT = Path(__file__).resolve().parents[3]
FILES = sorted(p for folder in ("cases", "manifests", "tests", "examples") if (ROOT / folder).is_dir()
               for p in (ROOT / folder).rglob("*.yaml"))


def parsed(text: str, monkeypatch: pytest.MonkeyPatch, libyaml: bool) -> object:
    monkeypatch.setattr(yaml, "__with_libyaml__", libyaml)
    try:
        return [(d.value, d.line, d.lines) for d in yamlsource.load_documents(text, "f.yaml")]
    except CaseSyntaxError as exc:
        return str(exc)


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="this PyYAML has no libyaml")
def test_every_yaml_file_here_reads_the_same_with_both_parsers(monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(FILES) > 50
    for path in FILES:
        text = path.read_text(encoding="utf-8", errors="replace")
        assert parsed(text, monkeypatch, True) == parsed(text, monkeypatch, False), path


def test_text_libyaml_refuses_is_reported_by_the_python_parser() -> None:
    with pytest.raises(CaseSyntaxError, match=r"^f.yaml:2, column 1: not valid YAML: found character '\\t' "):
        yamlsource.load_documents("a: 1\n\tb: 2\n", "f.yaml")
