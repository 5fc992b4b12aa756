"""Istio's own CRD schemas (``crd-all.gen.yaml`` of the ``istio.io/istio`` Go module the project builds istiod
from), for validating every Istio object the kube mesh writes: skipped where Go or the module is missing, an
error in CI (``.ci/run`` runs ``mesh-harness istiod build`` first, which downloads the module), as tests/istiod.py.

What is checked: the OpenAPI v3 schema of the object's version (types, enums, bounds, required fields,
``oneOf``), and, as the API server's strict field validation does, that no field is unknown to it. Not
checked: the CEL rules (``x-kubernetes-validations``), which only an API server evaluates.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from harness.errors import HarnessError
from harness.mesh.local.istiod.build import module_source

CRD_FILE = Path("manifests/charts/base/files/crd-all.gen.yaml")


def crd_path() -> Path:
    try:
        path = module_source() / CRD_FILE
    except HarnessError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must download istio.io/istio before the tests (`mesh-harness istiod build`): {exc}")
        pytest.skip(f"Istio's CRD schemas are not here: {exc}")
    if not path.is_file():
        pytest.fail(f"{path}: the istio.io/istio module has no CRD file there any more; find where it moved")
    return path


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> that version's openAPIV3Schema."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for crd in yaml.safe_load_all(crd_path().read_text()):
        if not crd or crd.get("kind") != "CustomResourceDefinition":
            continue
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            out[f"{group}/{version['name']}", kind] = version["schema"]["openAPIV3Schema"]
    return out


def istio_problems(obj: dict[str, Any]) -> list[str]:
    """Every way ``obj`` breaks its CRD schema (empty: it is valid)."""
    schema = crd_schemas().get((obj["apiVersion"], obj["kind"]))
    if schema is None:
        return [f"no CRD serves {obj['apiVersion']} {obj['kind']}"]
    problems = [f"{'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                for e in jsonschema.Draft7Validator(schema).iter_errors(obj)]
    return problems + [f"{path}: unknown field" for path in _unknown(obj.get("spec", {}), schema["properties"]["spec"],
                                                                      "spec")]


def _unknown(value: Any, schema: dict[str, Any], path: str) -> Iterator[str]:
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(value, dict):
        known = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if known is not None and key in known:
                yield from _unknown(item, known[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                yield from _unknown(item, extra, f"{path}.{key}")
            elif known is not None or extra is False:
                yield f"{path}.{key}"
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            yield from _unknown(item, schema["items"], f"{path}[{i}]")
