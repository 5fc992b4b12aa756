"""httpx clients for the harness's own plain-HTTP endpoints on this machine.

Echo control ports, Envoy admin, istiod's debug port, the environment daemon and port-forwards
all speak plain HTTP on 127.0.0.1, yet every ``httpx.Client`` builds a TLS context and loads
the system CA bundle into it (about 20 ms of CPU each). A mesh makes one client per app and per
proxy, so that load was a tenth of a local mesh's start and most of a case's client set-up.
Here the context is built once per process and shared; proxies from the environment are ignored,
since none of these addresses is reached through one.
"""

from __future__ import annotations

import functools
import ssl
from typing import Any

import httpx


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's own default (system CA bundle, verification on), loaded once; never used on plain HTTP."""
    return ssl.create_default_context()


def loopback_client(base_url: str = "", **kwargs: Any) -> httpx.Client:
    """An ``httpx.Client`` for a harness endpoint on this machine: ``trust_env=False``, the shared TLS context."""
    return httpx.Client(base_url=base_url, trust_env=False, verify=_tls_context(), **kwargs)
