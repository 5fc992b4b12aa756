"""Load runs send to loopback only: the builtin plane's sidecars listen on 127.0.0.1, istiod's on 127.A.B.x."""

from __future__ import annotations

import pytest

from harness.errors import MeshError
from harness.locust.run import is_loopback_url, run_locust


@pytest.mark.parametrize(("url", "loopback"), [
    ("http://127.0.0.1:9080", True), ("http://127.41.7.10:9080", True), ("http://128.0.0.1:9080", False),
    ("http://10.0.0.1:9080", False), ("http://localhost:9080", False), ("https://127.0.0.1:9080", False),
    ("http://[::1]:9080", True), ("http://0.0.0.0:9080", False),
])
def test_loopback_urls(url: str, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback


def test_run_locust_refuses_another_address_before_starting_anything() -> None:
    with pytest.raises(MeshError, match=r"loopback addresses only \(127.0.0.0/8; got http://10.0.0.1:9080\)"):
        run_locust(None, "http://10.0.0.1:9080", None)  # type: ignore[arg-type]
