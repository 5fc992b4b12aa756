"""mesh-harness: prove from live traffic that Istio traffic policies do what they say.

The public surface for Python tests written beside YAML cases (the pytest plugin's fixtures hand
out ``Mesh``, ``StatSettings``, ``SyncToken`` and lists of ``Observation``)::

    from harness import SendSpec, load_case_file, run_case

Everything else lives in modules whose names may change. The names resolve on first use (PEP 562),
because ``import harness`` also runs for every echo app process (``python -m harness.sample_apps.echo``)
and inside the echo app's container image, which holds this file and the echo app only: importing
the whole harness there would cost each app start pydantic, scipy and the Istio model, or fail.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness import expect
    from harness.case import Case, Check, load_case_file
    from harness.errors import CaseError, ConfigRejected, HarnessError, MeshError, SyncTimeout, ValidationError
    from harness.istio.load import load_manifest
    from harness.istio.model import IstioObject
    from harness.mesh.base import Mesh, MeshInfo, Observation, SendSpec, SyncToken
    from harness.result import CheckResult, RunResult, decode, encode
    from harness.runner import run_case, run_check
    from harness.settings import StatSettings

#: Each public name and the module it lives in.
_HOMES = {
    "expect": "harness",
    "Case": "harness.case",
    "Check": "harness.case",
    "load_case_file": "harness.case",
    "CaseError": "harness.errors",
    "ConfigRejected": "harness.errors",
    "HarnessError": "harness.errors",
    "MeshError": "harness.errors",
    "SyncTimeout": "harness.errors",
    "ValidationError": "harness.errors",
    "load_manifest": "harness.istio.load",
    "IstioObject": "harness.istio.model",
    "Mesh": "harness.mesh.base",
    "MeshInfo": "harness.mesh.base",
    "Observation": "harness.mesh.base",
    "SendSpec": "harness.mesh.base",
    "SyncToken": "harness.mesh.base",
    "CheckResult": "harness.result",
    "RunResult": "harness.result",
    "decode": "harness.result",
    "encode": "harness.result",
    "run_case": "harness.runner",
    "run_check": "harness.runner",
    "StatSettings": "harness.settings",
}

__all__ = [
    "Case",
    "CaseError",
    "Check",
    "CheckResult",
    "ConfigRejected",
    "HarnessError",
    "IstioObject",
    "Mesh",
    "MeshError",
    "MeshInfo",
    "Observation",
    "RunResult",
    "SendSpec",
    "StatSettings",
    "SyncTimeout",
    "SyncToken",
    "ValidationError",
    "decode",
    "encode",
    "expect",
    "load_case_file",
    "load_manifest",
    "run_case",
    "run_check",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    if home == __name__:
        return importlib.import_module(f"{__name__}.{name}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
