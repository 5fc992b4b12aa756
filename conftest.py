"""This repository's own suite set-up (not shipped: a user's repository gets only the two plugins).

The suite's markers are registered here and nowhere else. The plugins need none: a repository using
mesh-harness marks its tests as it likes. The shared mesh fixtures of the real-Envoy tests stay in
``tests/integration/conftest.py``: nothing outside that folder uses them.
"""

from __future__ import annotations

import pytest

MARKERS = (
    "envoy: starts real Envoy and sample-app processes",
    "slow: long statistical simulations",
    "kind: needs Docker, kind and kubectl (real Istio on a kind cluster); skipped with the reason where they are missing",
)


def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
