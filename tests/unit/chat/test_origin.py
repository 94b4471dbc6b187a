"""The WebSocket Origin check (chat/origin.py): scheme, host and port, on scopes."""

import pytest

from chat.origin import origin_allowed, origin_parse


def scope(origin: str | list[str] | None, host: str | None = "127.0.0.1:8000", server=("127.0.0.1", 8000)) -> dict:
    headers = []
    if host is not None:
        headers.append((b"host", host.encode()))
    for value in [origin] if isinstance(origin, str) else origin or []:
        headers.append((b"origin", value.encode()))
    return {"type": "websocket", "headers": headers, "server": server}


@pytest.mark.parametrize(
    "origin, host",
    [
        ("http://127.0.0.1:8000", "127.0.0.1:8000"),
        ("http://localhost:8000", "localhost:8000"),
        ("https://LOCALHOST:8000", "localhost:8000"),
        ("http://[::1]:8000", "[::1]:8000"),
        ("https://localhost", "localhost"),  # behind a TLS proxy: no port in Host, the scheme's default
        ("http://localhost:80", "localhost"),
    ],
)
def test_an_allowed_host_on_the_port_the_client_reached_is_accepted(settings, origin, host):
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
    settings.CHAT_ALLOWED_ORIGINS = []
    assert origin_allowed(scope(origin, host))


@pytest.mark.parametrize(
    "origin, host",
    [
        ("http://127.0.0.1:8001", "127.0.0.1:8000"),  # the right host on the wrong port
        ("http://127.0.0.1", "127.0.0.1:8000"),
        ("https://localhost:8443", "localhost"),
        ("http://127.0.0.1.evil.example:8000", "127.0.0.1:8000"),
        ("http://evil.example:8000", "127.0.0.1:8000"),
        ("null", "127.0.0.1:8000"),
        ("", "127.0.0.1:8000"),
        ("ws://127.0.0.1:8000", "127.0.0.1:8000"),
        ("http://127.0.0.1:8000/", "127.0.0.1:8000"),
        ("http://user@127.0.0.1:8000", "127.0.0.1:8000"),
        ("http://127.0.0.1:99999", "127.0.0.1:8000"),
        ("http://[::1", "127.0.0.1:8000"),
        (["http://127.0.0.1:8000", "http://127.0.0.1:8000"], "127.0.0.1:8000"),  # two Origin headers
        (None, "127.0.0.1:8000"),  # none at all
    ],
)
def test_look_alikes_other_ports_and_malformed_origins_are_refused(settings, origin, host):
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
    settings.CHAT_ALLOWED_ORIGINS = []
    assert not origin_allowed(scope(origin, host))


def test_without_a_host_header_the_listening_port_counts(settings):
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    settings.CHAT_ALLOWED_ORIGINS = []
    assert origin_allowed(scope("http://127.0.0.1:9000", host=None, server=("127.0.0.1", 9000)))
    assert not origin_allowed(scope("http://127.0.0.1:9001", host=None, server=("127.0.0.1", 9000)))


def test_a_wildcard_allowed_host_covers_subdomains_on_the_same_port(settings):
    settings.ALLOWED_HOSTS = [".example.com"]
    settings.CHAT_ALLOWED_ORIGINS = []
    assert origin_allowed(scope("https://chat.example.com", "chat.example.com"))
    assert not origin_allowed(scope("https://chat.example.com.evil.net", "chat.example.com"))


def test_configured_origins_are_matched_exactly(settings):
    settings.ALLOWED_HOSTS = ["127.0.0.1", "chat.example.com"]
    settings.CHAT_ALLOWED_ORIGINS = ["https://chat.example.com", "http://127.0.0.1:3000"]
    assert origin_allowed(scope("https://chat.example.com:443", "127.0.0.1:8000"))
    assert origin_allowed(scope("http://127.0.0.1:3000", "127.0.0.1:8000"))
    assert not origin_allowed(scope("http://127.0.0.1:8000", "127.0.0.1:8000"))  # not implied any more
    assert not origin_allowed(scope("http://chat.example.com", "chat.example.com"))


def test_origin_parse_normalises_case_and_default_ports():
    assert origin_parse("HTTPS://Chat.Example.COM") == ("https", "chat.example.com", 443)
    assert origin_parse("http://[::1]:8000") == ("http", "::1", 8000)
    assert origin_parse("null") is None
