"""Which pages may open the dashboard's websocket: the full origin (scheme, host and port).

A browser sends the session cookie with a websocket from any page, so the ``Origin`` header is
what keeps a page on another site — or on another port of the same host — from reading the live
feed with an operator's cookie. Channels' ``AllowedHostsOriginValidator`` compares the host
only; this compares all three parts, as Django's CSRF origin check does for forms.

An origin is accepted when it is

- the server's own: the scheme of the connection (``ws`` → ``http``, ``wss`` → ``https``, or
  ``https`` behind a proxy that ``SECURE_PROXY_SSL_HEADER`` names) with the request's ``Host``
  header, itself one of ``ALLOWED_HOSTS``. This is what a page served by the same daphne sends,
  whatever port ``make run`` chose, so nothing needs configuring for it; or
- listed in ``WEBSOCKET_ALLOWED_ORIGINS`` or ``CSRF_TRUSTED_ORIGINS`` as
  ``scheme://host[:port]`` (no port means the scheme's default, as browsers send it).

Anything else, a missing or ``null`` origin included, is refused before the handshake (403).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http.request import split_domain_port, validate_host

Origin = tuple[str, str, int]
DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_origin(text: str) -> Origin | None:
    """``(scheme, host, port)`` of an origin, the port filled in; ``None`` when malformed."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:  # a port out of range or not a number
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in DEFAULT_PORTS or not host or parts.path not in ("", "/"):
        return None
    return scheme, host, port if port is not None else DEFAULT_PORTS[scheme]


def configured_origins() -> frozenset[Origin]:
    """``WEBSOCKET_ALLOWED_ORIGINS`` and ``CSRF_TRUSTED_ORIGINS``, parsed.

    Raises:
        ImproperlyConfigured: an entry is not ``scheme://host[:port]`` (wildcards included:
            an origin is compared whole).
    """
    entries = [*getattr(settings, "WEBSOCKET_ALLOWED_ORIGINS", ()),
               *settings.CSRF_TRUSTED_ORIGINS]
    return frozenset(_parse_setting(entry) for entry in entries)


def _parse_setting(entry: str) -> Origin:
    origin = parse_origin(entry) if "*" not in entry else None
    if origin is None:
        raise ImproperlyConfigured(
            f"{entry!r} in WEBSOCKET_ALLOWED_ORIGINS or CSRF_TRUSTED_ORIGINS is not an origin: "
            "write scheme://host[:port], e.g. https://ops.example.com or http://127.0.0.1:8000 "
            "(no wildcards, no path)"
        )
    return origin


def own_origin(scope: dict[str, Any]) -> Origin | None:
    """The origin a page served by this server has, from the connection's scheme and ``Host``."""
    headers = dict(scope.get("headers") or [])
    host = headers.get(b"host", b"").decode("latin-1").strip().lower()
    domain, port = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    scheme = "https" if scope.get("scheme") in ("wss", "https") or _proxied_https(headers) \
        else "http"
    return scheme, domain.strip("[]"), int(port) if port else DEFAULT_PORTS[scheme]


def _proxied_https(headers: dict[bytes, bytes]) -> bool:
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if not proxy:
        return False
    name, value = proxy  # Django's form: ("HTTP_X_FORWARDED_PROTO", "https")
    header = name.removeprefix("HTTP_").replace("_", "-").lower().encode("latin-1")
    return headers.get(header, b"").decode("latin-1").split(",")[0].strip() == value


def allowed(scope: dict[str, Any], allowed_origins: Iterable[Origin] | None = None) -> bool:
    """Whether the websocket in ``scope`` comes from a page allowed to open it."""
    origins = [value for name, value in scope.get("headers") or [] if name == b"origin"]
    if len(origins) != 1:
        return False
    origin = parse_origin(origins[0].decode("latin-1"))
    if origin is None:
        return False
    listed = configured_origins() if allowed_origins is None else allowed_origins
    return origin in listed or origin == own_origin(scope)


class OriginValidator:
    """ASGI middleware: a websocket from an origin ``allowed`` refuses is denied (403)."""

    def __init__(self, application: Any):
        self.application = application
        configured_origins()  # a bad setting fails at start-up, not at the first connection

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not allowed(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
