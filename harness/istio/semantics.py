"""How istiod reads hosts and orders objects: shared by validation (warnings) and the local translator.

Pure Istio semantics, no Envoy: short-name host resolution (``ResolveShortnameToFQDN``), the
creation-time order istiod sorts configs by (``configCompareByCreationTime``), which
VirtualServices bind to sidecars (``gateways`` empty or containing ``mesh``), and how a gateway
reference is resolved.
"""

from __future__ import annotations

import ipaddress

from harness.istio.model import IstioObject, VirtualService
from harness.topology import CLUSTER_DOMAIN

MESH_GATEWAY = "mesh"


def resolve_host(host: str, namespace: str) -> str:
    """A VS or DR host as istiod reads it: a name without a dot is completed with the object's
    namespace; anything with a dot (``reviews.other``) is taken as written, which is why
    ``reviews.other`` matches no service (reference section 8.4)."""
    host = host.lower()
    if host == "*" or "." in host or _is_ip(host):
        return host
    return f"{host}.{namespace}.{CLUSTER_DOMAIN}"


def creation_order(obj: IstioObject) -> tuple[int, float, str, str]:
    """Sort key: oldest first (objects without a timestamp last), then name, then namespace."""
    ts = obj.metadata.creation_timestamp
    stamp = (0, ts.timestamp()) if ts else (1, 0.0)
    return (*stamp, obj.metadata.name, obj.metadata.namespace)


def binds_to_sidecars(vs: VirtualService) -> bool:
    return not vs.spec.gateways or MESH_GATEWAY in vs.spec.gateways


def resolve_gateway_name(name: str, namespace: str) -> str:
    """A VirtualService's gateway reference as istiod reads it (``ResolveGatewayName``): ``mesh`` stays,
    ``ns/name`` is taken as written, ``name.ns[...]`` is the legacy FQDN form, and a bare ``name`` is in
    the VirtualService's ``namespace``. The result is ``namespace/name``."""
    if name == MESH_GATEWAY or "/" in name:
        return name
    if "." in name:
        short, ns, *_ = name.split(".")
        return f"{ns}/{short}"
    return f"{namespace}/{name}"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
