"""Shared builders for the front-end tests: cases from YAML text, judges fed with scripted observations."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from harness.case import Case, load_case, load_case_file
from harness.expect import Sample
from harness.mesh.base import Observation
from harness.yamlsource import load_documents

SUBSETS = """\
  - apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: {name: reviews}
    spec:
      host: reviews
      subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
"""


def make_case_text(*checks: str, name: str = "demo", config: str = SUBSETS) -> str:
    """A case document; each of ``checks`` is the YAML of one list entry, without the leading dash."""
    entries = "".join("  - " + c.strip().replace("\n", "\n    ") + "\n" for c in checks)
    return f"name: {name}\nconfig:\n{config}checks:\n{entries}"


def make_check(name: str, expect: str, url: str = "http://reviews:9080/", extra: str = "") -> str:
    return f'name: {name}\nsend: {{url: "{url}"}}\nexpect: {expect}\n{extra}'


def make_case(text: str, file: str = "case.yaml") -> Case:
    """The one case in ``text``, loaded as the CLI would load it from ``file``."""
    (doc,) = load_documents(text, file)
    return load_case(doc)


def write_cases(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    load_case_file(path)  # the builders only write valid cases
    return path


def make_samples(values: Iterable[tuple[str | None, int]], *, start: int = 0) -> list[Sample]:
    """Samples answered by ``(version, status)``, with request ids ``r<n>`` counted from ``start``."""
    return [
        Sample(Observation(index=i, request_id=f"r{start + i}", status=status, latency_s=0.001, version=version,
                           service=None if version is None else "reviews", config_version="1"))
        for i, (version, status) in enumerate(values)
    ]


def exact_split(n: int, fractions: dict[str, float]) -> list[tuple[str | None, int]]:
    """``n`` (version, 200) pairs whose counts are the fractions rounded, the rest on the last version."""
    names = list(fractions)
    counts = {k: round(n * fractions[k]) for k in names[:-1]}
    counts[names[-1]] = n - sum(counts.values())
    return [(k, 200) for k in names for _ in range(counts[k])]
