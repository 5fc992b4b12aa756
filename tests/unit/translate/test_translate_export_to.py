"""exportTo of VirtualServices and ServiceEntries: who sees them, and the order sidecars take VirtualServices in
(istiod 1.30.3 push_context.go initVirtualServices / initServiceRegistry, virtualservice.go SelectVirtualServices)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from harness.istio.model import VirtualService
from harness.mesh.local.translate.select import exported_to, gateway_virtual_services, sidecar_virtual_services


@pytest.mark.parametrize(
    ("export_to", "owner", "namespace", "visible"),
    [
        ((), "default", "team", True),
        (("*",), "default", "team", True),
        ((".",), "default", "default", True),
        ((".",), "default", "team", False),
        (("default",), "default", "default", True),
        (("default",), "default", "team", False),
        (("team",), "default", "team", True),
        (("team",), "default", "default", False),
        ((".", "team"), "default", "team", True),
        ((".", "team"), "default", "other", False),
        (("~",), "default", "default", False),
    ],
)
def test_exported_to(export_to: tuple[str, ...], owner: str, namespace: str, visible: bool) -> None:
    assert exported_to(export_to, owner, namespace) is visible


def vs(name: str, namespace: str, second: int, export_to: list[str] | None = None, **spec: Any) -> VirtualService:
    meta = {"name": name, "namespace": namespace,
            "creationTimestamp": datetime(2026, 1, 1, 0, 0, second, tzinfo=UTC).isoformat()}
    body: dict[str, Any] = {"hosts": ["reviews.default.svc.cluster.local"], "http": [{"route": []}], **spec}
    if export_to is not None:
        body["exportTo"] = export_to
    return VirtualService.model_validate({"apiVersion": "networking.istio.io/v1", "metadata": meta, "spec": body})


def names(vss: list[VirtualService]) -> list[str]:
    return [f"{v.metadata.namespace}/{v.metadata.name}" for v in vss]


def test_sidecar_virtual_services_private_then_exported_then_public_each_oldest_first() -> None:
    objects = [
        vs("public-old", "default", 0),
        vs("public-star", "other", 1, ["*"]),
        vs("to-team", "default", 2, ["team"]),
        vs("team-private", "team", 3, ["."]),
        vs("team-by-name", "team", 4, ["team"]),
        vs("default-private", "default", 0, ["."]),
        vs("to-other", "default", 0, ["other"]),
    ]
    assert names(sidecar_virtual_services(objects, "team")) == [
        "team/team-private", "team/team-by-name", "default/to-team", "default/public-old", "other/public-star",
    ]
    assert names(sidecar_virtual_services(objects, "default")) == [
        "default/default-private", "default/public-old", "other/public-star",
    ]


def test_gateway_virtual_services_follow_the_gateway_proxy_namespace() -> None:
    bound = {"gateways": ["default/gw"]}
    objects = [
        vs("private", "default", 0, ["."], **bound),
        vs("to-root", "default", 1, ["istio-system"], **bound),
        vs("public", "default", 2, **bound),
        vs("mesh-only", "default", 0),
    ]
    assert names(gateway_virtual_services(objects, "default/gw", "istio-system")) == [
        "default/to-root", "default/public",
    ]
    assert names(gateway_virtual_services(objects, "default/gw", "default")) == ["default/private", "default/public"]
