"""``bounded_request``: httpx's errors become harness errors at the boundary, the httpx error kept as the cause."""

from __future__ import annotations

import httpx
import pytest

from harness.errors import HarnessError, MeshError, SyncTimeout
from harness.mesh.echo_client import bounded_request


def client_raising(exc: Exception) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return httpx.Client(transport=httpx.MockTransport(handler), base_url="http://127.0.0.1:1")


def unreachable(exc: httpx.TransportError) -> HarnessError:
    return MeshError(f"gone ({exc})")


@pytest.mark.parametrize(("raised", "want", "message"), [
    (httpx.ReadTimeout("slow"), SyncTimeout, "no answer within 1s"),
    (httpx.ConnectTimeout("slow"), SyncTimeout, "no answer within 1s"),
    (httpx.ConnectError("refused"), MeshError, "gone (refused)"),
    (httpx.RemoteProtocolError("cut"), MeshError, "gone (cut)"),
])
def test_echo_client_bounded_request_maps_httpx_errors(raised: Exception, want: type[HarnessError], message: str) -> None:
    with client_raising(raised) as http, pytest.raises(want) as caught:
        bounded_request(http, "GET", "/x", timeout=1.0, no_answer="no answer within 1s", unreachable=unreachable)
    assert str(caught.value) == message and caught.value.__cause__ is raised

