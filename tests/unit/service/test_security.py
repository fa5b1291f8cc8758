"""Secure by default: writes open to anyone are refused off loopback, placeholder keys are
refused everywhere, and `otaku serve` says why and how to fix it before it listens."""

import pytest
from typer.testing import CliRunner

from otaku.cli import app
from otaku.config import Settings, get_settings
from otaku.service.security import (
    InsecureConfigurationError,
    check_write_access,
    is_loopback,
    key_matches,
)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.10.0.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
        ("api.example.org", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_open_writes_are_fine_on_loopback_only() -> None:
    check_write_access(Settings(api_key=None), "127.0.0.1")
    with pytest.raises(InsecureConfigurationError, match="OTAKU_API_KEY"):
        check_write_access(Settings(api_key=None), "0.0.0.0")
    check_write_access(Settings(api_key=None, allow_open_writes=True), "0.0.0.0")
    check_write_access(Settings(api_key="a-real-secret-of-some-length"), "0.0.0.0")


@pytest.mark.parametrize("placeholder", ["change-me", "REPLACE_ME", " changeme "])
def test_placeholder_keys_are_refused_everywhere(placeholder: str) -> None:
    with pytest.raises(InsecureConfigurationError, match="placeholder"):
        check_write_access(Settings(api_key=placeholder), "127.0.0.1")


def test_keys_compare_as_bytes() -> None:
    assert key_matches("s3cret", "s3cret")
    assert not key_matches("s3crét", "s3cret")
    assert not key_matches("\xff\xfe", "s3cret")
    assert not key_matches(None, "s3cret")
    assert not key_matches("", "s3cret")


def test_serve_refuses_to_listen_with_open_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTAKU_API_KEY", raising=False)
    monkeypatch.delenv("OTAKU_ALLOW_OPEN_WRITES", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--port", "1"])
        monkeypatch.setenv("OTAKU_API_KEY", "change-me")
        get_settings.cache_clear()
        placeholder = CliRunner().invoke(app, ["serve", "--host", "127.0.0.1", "--port", "1"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "refusing to listen on 0.0.0.0" in " ".join(result.output.split())
    assert placeholder.exit_code == 2
    assert "placeholder" in placeholder.output
