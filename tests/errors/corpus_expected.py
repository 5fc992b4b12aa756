"""The bad-input corpus (``tests/errors/corpus/``) and what each input must say, shared by the CLI and pytest tests.

``EXPECTED.yaml`` maps each corpus file to its issues, in order; ``assert_issues`` checks that the
reported lines are exactly those issues (one line each, nothing else), that the file is named and
that no traceback leaked.
"""

from __future__ import annotations

from pathlib import Path

import yaml

CORPUS = Path(__file__).parent / "corpus"
WARNINGS = Path(__file__).parent / "corpus_warnings"
IssueParts = list[str]
"""Substrings that one reported line must hold (most entries: the whole line without its directory)."""


def _expected(directory: Path) -> dict[str, list[IssueParts]]:
    raw = yaml.safe_load((directory / "EXPECTED.yaml").read_text(encoding="utf-8"))
    return {name: [[item] if isinstance(item, str) else list(item) for item in items] for name, items in raw.items()}


EXPECTED = _expected(CORPUS)
EXPECTED_WARNINGS = _expected(WARNINGS)


def corpus_files(directory: Path) -> list[str]:
    """The inputs of a corpus directory: every YAML file in it but the manifest of expectations."""
    return sorted(p.name for p in directory.glob("*.yaml") if p.name != "EXPECTED.yaml")


def assert_issues(reported: list[str], name: str, expected: list[IssueParts], output: str) -> None:
    """``reported`` (one issue per line) is exactly ``expected``; ``output`` (all that was printed) names
    the file and has no traceback."""
    assert len(reported) == len(expected), f"{name}: expected {len(expected)} issue(s), got:\n" + "\n".join(reported)
    for line, parts in zip(reported, expected, strict=True):
        missing = [p for p in parts if p not in line]
        assert not missing, f"{name}: {missing} not in {line!r}"
    assert name in output or "manifests/" in output, f"{name}: the file is not named in:\n{output}"
    assert "Traceback" not in output and 'File "' not in output, output
