"""Every exception the harness raises, in one tree.

    HarnessError                 anything that stops the harness from running a check
    ├── CaseError                the user's input is wrong (exit code 2, a pytest collection error)
    │   ├── CaseSyntaxError      the file is not YAML, or not shaped like a case
    │   ├── ValidationError      one or more field-level problems, all reported at once
    │   └── UnsupportedError     valid Istio that this mesh cannot reproduce faithfully
    └── MeshError                the mesh could not do what was asked
        ├── ConfigRejected       a proxy NACKed pushed config; carries Envoy's error_detail
        ├── SyncTimeout          a wait ran out; says what was awaited and what was last seen
        └── ProcessError         a child process (Envoy, a sample app) failed to start or died

A failed check is a ``Verdict`` value, never an exception: exceptions mean "could not run".
Foreign exceptions (grpc, subprocess, kubernetes) are translated at the boundary with
``raise ... from exc`` so that a case author never sees a raw traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

_In = TypeVar("_In")
_Out = TypeVar("_Out")


class HarnessError(Exception):
    """Base of every error the harness raises on purpose."""


class CaseError(HarnessError):
    """The user's input (a case file, a manifest, an option) is wrong."""


class CaseSyntaxError(CaseError):
    """A file could not be parsed, or its top level is not shaped as expected."""


@dataclass(frozen=True)
class Issue:
    """One problem in the input, located as precisely as we can.

    ``path`` is a dotted field path that can be pasted next to the YAML (``spec.http[0].route``);
    ``obj`` names the object (``VirtualService/reviews``) when the issue is inside one.
    """

    message: str
    file: str | None = None
    line: int | None = None
    obj: str | None = None
    path: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        parts = [p for p in (self.obj, self.path) if p]
        subject = ": ".join(parts)
        return f"{where}{subject}: {self.message}" if subject else f"{where}{self.message}"


class ValidationError(CaseError):
    """One or more issues found while validating input; every issue is reported, not just the first."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


def load_all(items: Iterable[_In], load: Callable[[_In], Iterable[_Out]]) -> list[_Out]:
    """``load`` every item and concatenate the results; the issues of every item are raised together
    as one ``ValidationError``, so a user sees all their mistakes at once (Istio's ``appendErrors``)."""
    loaded: list[_Out] = []
    issues: list[Issue] = []
    for item in items:
        try:
            loaded.extend(load(item))
        except ValidationError as exc:
            issues.extend(exc.issues)
    if issues:
        raise ValidationError(issues)
    return loaded


class UnsupportedError(ValidationError):
    """Valid Istio config that this mesh cannot reproduce; the message names the field and says to use --mesh kind."""


class MeshError(HarnessError):
    """The mesh could not start, apply, send or stop as asked."""


class ConfigRejected(MeshError):
    """A proxy rejected pushed config (an xDS NACK). The previous config was restored everywhere."""

    def __init__(self, node: str, type_name: str, version: str, detail: str) -> None:
        self.node = node
        self.type_name = type_name
        self.version = version
        self.detail = detail
        super().__init__(
            f"Envoy node {node} rejected {type_name} (version {version}): {detail}; "
            "the previous config was restored. If the case is valid Istio, this is a harness bug"
        )


class SyncTimeout(MeshError):
    """A bounded wait ran out. The message says what was awaited and what was last seen."""


class ProcessError(MeshError):
    """A child process failed to start or died; the message carries its exit code and log tail."""
