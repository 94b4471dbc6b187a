"""The WebSocket handshake's Origin check: scheme, host and port must all match.

Channels' AllowedHostsOriginValidator compares only the host, so a page served
from the right host on another port (another app on the same machine) could open
sockets with the user's cookie. Here an Origin is accepted when it is exactly one
of CHAT_ALLOWED_ORIGINS (`scheme://host[:port]`, default ports implied), or, when
that setting is empty, when its host is one of ALLOWED_HOSTS and its port is the
port the client reached this server on (the Host header's, else the listening
socket's). Anything else (`null`, a look-alike such as `http://127.0.0.1.evil.example`,
a path, several origins, a missing header) is refused with HTTP 403.
"""

from typing import Any
from urllib.parse import SplitResult, urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_parse(raw: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of a serialised origin, or None for anything else."""
    try:
        parts: SplitResult = urlsplit(raw.strip())
        port = parts.port
    except ValueError:  # a port that is not a number or out of range, a broken IPv6 literal
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.path or parts.query or parts.fragment or parts.username is not None or parts.password is not None:
        return None
    host = parts.hostname.lower()
    return parts.scheme, host, port if port is not None else _DEFAULT_PORTS[parts.scheme]


def _reached_port(scope: dict[str, Any], headers: dict[bytes, list[bytes]], scheme: str) -> int | None:
    """The port the client addressed: the Host header's, its scheme's default, else the socket's."""
    hosts = headers.get(b"host", [])
    if len(hosts) == 1:
        _, port = split_domain_port(hosts[0].decode("latin-1"))
        if port:
            return int(port) if port.isdigit() else None
        return _DEFAULT_PORTS[scheme]
    server = scope.get("server")
    return int(server[1]) if server and server[1] is not None else None


def origin_allowed(scope: dict[str, Any]) -> bool:
    headers: dict[bytes, list[bytes]] = {}
    for name, value in scope.get("headers", []):
        headers.setdefault(name.lower(), []).append(value)
    values = headers.get(b"origin", [])
    if len(values) != 1:
        return False
    origin = origin_parse(values[0].decode("latin-1"))
    if origin is None:
        return False
    configured = [origin_parse(item) for item in settings.CHAT_ALLOWED_ORIGINS]
    if configured:
        return origin in configured
    scheme, host, port = origin
    named = f"[{host}]" if ":" in host else host
    return validate_host(named, settings.ALLOWED_HOSTS) and port == _reached_port(scope, headers, scheme)
