"""Port name -> protocol as istiod's ``kube.ConvertProtocol`` reads it, and the builtin translator's refusal
of ports it would not serve as HTTP (istiod 1.30.3: ``pkg/config/kube/conversion.go``,
``pkg/config/protocol/instance.go``)."""

from __future__ import annotations

import pytest

from harness.errors import UnsupportedError
from harness.mesh.local.translate import TranslateInput, topology_issues, translate, translate_gateway
from harness.topology import INGRESS_GATEWAY, Client, Service, ServicePort, Topology


@pytest.mark.parametrize(
    ("name", "number", "expected"),
    [
        # protocol.Parse's table, by the prefix before the first '-', case-insensitive
        ("http", 9080, "HTTP"),
        ("http-alt", 9080, "HTTP"),
        ("HTTP", 9080, "HTTP"),
        ("http2", 9080, "HTTP2"),
        ("http2-x", 9080, "HTTP2"),
        ("grpc", 7070, "GRPC"),
        ("GRPC", 7070, "GRPC"),
        ("grpc-foo", 7070, "GRPC"),
        ("grpc-we", 7070, "GRPC"),
        ("https", 443, "HTTPS"),
        ("https-admin", 8443, "HTTPS"),
        ("tcp", 9000, "TCP"),
        ("tcp-db", 9000, "TCP"),
        ("Tcp", 9000, "TCP"),
        ("tls", 9000, "TLS"),
        ("tls-passthrough", 9000, "TLS"),
        ("mongo", 9000, "Mongo"),
        ("mysql", 9000, "MySQL"),
        ("redis", 9000, "Redis"),
        ("REDIS-cache", 9000, "Redis"),
        ("udp", 9000, "UDP"),
        ("http_proxy", 9000, "HTTP_PROXY"),
        # "grpc-web" is matched as a prefix of 8 characters before the '-' cut, in any case
        ("grpc-web", 7070, "GRPC-Web"),
        ("GRPC-WEB", 7070, "GRPC-Web"),
        ("grpc-web-ui", 7070, "GRPC-Web"),
        ("grpc-website", 7070, "GRPC-Web"),
        # Go's ToLower maps U+0130 to a plain 'i' (Python's lower() adds a combining dot)
        ("RED\u0130S", 9000, "Redis"),
        # unknown names: sniffed (None), except on the well-known ports, which are TCP
        ("web", 8080, None),
        ("metrics", 15014, None),
        ("httpx", 8080, None),
        ("grpcweb", 7070, None),
        ("h2c", 8080, None),
        ("", 8080, None),
        ("doublehbone", 8080, None),
        ("DoubleHBONE", 8080, None),
        ("hbone", 15008, None),
        ("web", 25, "TCP"),
        ("dns", 53, "TCP"),
        ("db", 3306, "TCP"),
        ("db", 27017, "TCP"),
        ("http", 3306, "HTTP"),
    ],
)
def test_istio_protocol_follows_convert_protocol(name: str, number: int, expected: str | None) -> None:
    assert ServicePort(name, number).istio_protocol == expected


@pytest.mark.parametrize(
    ("name", "protocol"),
    [("http", "http"), ("http-alt", "http"), ("grpc", "grpc"), ("GRPC", "grpc"), ("grpc-web", "grpc"),
     ("http2", "http2"), ("HTTP2-x", "http2"), ("tcp", "http"), ("web", "http")],
)
def test_protocol_is_derived_from_istio_protocol(name: str, protocol: str) -> None:
    assert ServicePort(name, 9080).protocol == protocol


def _topology(*ports: ServicePort, external: bool = False) -> Topology:
    return Topology(services=(Service("db", versions=("v1",), ports=ports, external=external),))


def _input(topology: Topology, client: Client | None = None) -> TranslateInput:
    return TranslateInput(topology=topology, client=client or topology.clients[0], endpoints={}, objects=(), config_version=1)


@pytest.mark.parametrize("name", ["tcp", "tcp-db", "https", "tls", "mongo", "mysql", "redis", "udp", "http_proxy"])
def test_non_http_port_is_refused_naming_the_port_and_the_way_out(name: str) -> None:
    (issue,) = topology_issues(_topology(ServicePort(name, 9000)))
    protocol = ServicePort(name, 9000).istio_protocol
    assert f"port {name!r} (9000) of service 'db' is protocol {protocol} to Istio" in issue.message
    assert "VirtualService http rules do not apply" in issue.message
    assert "--control-plane istiod or --mesh kind" in issue.message
    assert issue.path == "services.db.ports"


def test_sniffed_port_is_refused_as_sniffed() -> None:
    (issue,) = topology_issues(_topology(ServicePort("http", 9080), ServicePort("web", 8080)))
    assert "port 'web' (8080) of service 'db' is a name Istio does not know, so Istio sniffs" in issue.message
    assert "--control-plane istiod or --mesh kind" in issue.message


def test_well_known_port_with_unknown_name_is_refused_as_tcp() -> None:
    (issue,) = topology_issues(_topology(ServicePort("db", 3306)))
    assert "is protocol TCP to Istio" in issue.message


@pytest.mark.parametrize("name", ["http", "http-alt", "HTTP", "http2", "grpc", "GRPC", "grpc-web", "grpc-x"])
def test_http_like_ports_are_translated(name: str) -> None:
    assert topology_issues(_topology(ServicePort(name, 9080))) == []


def test_external_app_ports_are_left_to_the_service_entry() -> None:
    assert topology_issues(_topology(ServicePort("tcp", 9000), external=True)) == []


def test_translate_and_translate_gateway_refuse_a_tcp_port() -> None:
    topology = _topology(ServicePort("http", 9080), ServicePort("tcp", 9000))
    with pytest.raises(UnsupportedError, match=r"services\.db\.ports: port 'tcp' \(9000\)"):
        translate(_input(topology))
    with pytest.raises(UnsupportedError, match=r"port 'tcp' \(9000\)"):
        translate_gateway(_input(topology, INGRESS_GATEWAY))
