"""Istio objects as the user wrote them (pure): the dict an API server or istiod's config files take.

``to_manifest`` turns a typed ``IstioObject`` back into what the user wrote: only the fields they set
(``model_fields_set``), under their YAML names, durations as Go duration strings (the model keeps
seconds), in a given namespace. The kube mesh applies it through the API server; the local mesh's
istiod plane writes it into istiod's config directory.
"""

from __future__ import annotations

import typing
from datetime import datetime
from typing import Any

from pydantic import BaseModel, BeforeValidator
from pydantic.fields import FieldInfo

from harness.istio.duration import format_duration
from harness.istio.model import IstioObject


def to_manifest(obj: IstioObject, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    """The object for the API server: fields as written, in ``namespace``, with the run's ``labels`` added."""
    out = _dump(obj)
    meta = out.setdefault("metadata", {})
    meta["namespace"] = namespace
    meta["labels"] = {**meta.get("labels", {}), **labels}
    return out


def _dump(model: BaseModel) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, info in type(model).model_fields.items():
        if name == "source" or name not in model.model_fields_set:
            continue
        out[info.alias or name] = _value(getattr(model, name), _is_duration(info))
    return out


def _value(value: Any, duration: bool) -> Any:
    if isinstance(value, BaseModel):
        return _dump(value)
    if isinstance(value, list | tuple):
        return [_value(v, duration) for v in value]
    if isinstance(value, dict):
        return {k: _value(v, duration) for k, v in value.items()}
    if duration and isinstance(value, float):
        return format_duration(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _is_duration(info: FieldInfo) -> bool:
    """Whether a field holds ``Duration`` (seconds parsed from a Go duration string), possibly optional."""
    return any(_has_duration(m) for m in info.metadata) or _has_duration(info.annotation)


def _has_duration(annotation: Any) -> bool:
    if isinstance(annotation, BeforeValidator):
        return getattr(annotation.func, "__name__", "") == "_to_duration"
    return any(_has_duration(a) for a in typing.get_args(annotation)) or any(
        _has_duration(m) for m in getattr(annotation, "__metadata__", ()))
