"""``up --services FILE``: the case ``services:``/``clients:`` schema, errors with lines and paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.env.services import load_services_file
from harness.errors import ValidationError
from harness.topology import Service, ServicePort


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "services.yaml"
    path.write_text(text)
    return path


def test_env_services_file_to_topology(tmp_path: Path) -> None:
    topo = load_services_file(write(tmp_path, (
        "services:\n  reviews:\n    versions: [v1, v2]\n    replicas: {v1: 2}\n"
        "    ports: [{name: http, number: 80}]\n    knobs: {v2: {status: '503'}}\n")))
    assert topo.services == (Service("reviews", ("v1", "v2"), (("v1", 2),), (ServicePort("http", 80),),
                                     knobs=(("v2", (("status", "503"),)),)),)
    assert sorted(topo.instances()) == ["reviews-v1-0", "reviews-v1-1", "reviews-v2-0"]
    assert [c.name for c in topo.clients] == ["client"]


def test_env_services_file_every_issue_with_line(tmp_path: Path) -> None:
    path = write(tmp_path, "services:\n  reviews:\n    versions: [v1]\n    knobs: {v3: {status: '999'}}\n")
    with pytest.raises(ValidationError) as info:
        load_services_file(path)
    text = str(info.value)
    assert f"{path}:4: services.reviews.knobs.v3: expected a version (v1) or an instance name (reviews-v1-0)" in text
    assert "bad value for echo knob 'status'" in text


@pytest.mark.parametrize("text, message", [
    ("servics: {}\n", "servics: unknown field; did you mean services?"),
    ("services: {}\n", "services: no services; add one"),
    ("a: 1\n---\nb: 2\n", "expected one YAML document with 'services:', got 2"),
])
def test_env_services_file_shape(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        load_services_file(write(tmp_path, text))
