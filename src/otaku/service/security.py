"""Who may write and read: the API key check, and the refusal to start insecurely."""

import ipaddress
import secrets

from otaku.config import Settings

# Keys that ship in templates and examples: a service configured with one is not protected.
PLACEHOLDER_KEYS = frozenset({"change-me", "changeme", "replace_me", "secret", "password"})


class InsecureConfigurationError(RuntimeError):
    """The service would start in a way that exposes writes; the message says how to fix it."""


def key_matches(given: str | None, expected: str) -> bool:
    """Whether a header value is the configured key (constant time; any bytes are fine: a
    header with non-ASCII bytes is simply a wrong key)."""
    if not given:
        return False
    return secrets.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: assume others can reach it


def check_write_access(settings: Settings, host: str) -> None:
    """Refuse to serve writes that anyone can make: no key on a non-loopback address (unless
    ``OTAKU_ALLOW_OPEN_WRITES``), or a placeholder key from a template."""
    key = settings.api_key
    if key is not None and key.strip().lower() in PLACEHOLDER_KEYS:
        raise InsecureConfigurationError(
            f"OTAKU_API_KEY is the placeholder {key!r}: set a real secret "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    if not key and not is_loopback(host) and not settings.allow_open_writes:
        raise InsecureConfigurationError(
            f"refusing to listen on {host} with writes open to anyone: set OTAKU_API_KEY, "
            "listen on 127.0.0.1, or set OTAKU_ALLOW_OPEN_WRITES=true to accept the risk"
        )
