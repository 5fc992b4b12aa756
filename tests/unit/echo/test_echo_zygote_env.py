"""The zygote hides the CA bundle only while the app imports; the instances it forks get the environment back."""

from __future__ import annotations

import os

import pytest

from harness.sample_apps.echo.zygote import _ca_bundle_hidden


def test_an_unset_ca_file_is_unset_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with _ca_bundle_hidden():
        assert os.environ["SSL_CERT_FILE"] == os.devnull
    assert "SSL_CERT_FILE" not in os.environ


def test_a_ca_file_the_user_set_is_restored_also_after_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", "/etc/my-corp-ca.pem")
    with pytest.raises(ImportError), _ca_bundle_hidden():
        raise ImportError("the app failed to import")
    assert os.environ["SSL_CERT_FILE"] == "/etc/my-corp-ca.pem"
