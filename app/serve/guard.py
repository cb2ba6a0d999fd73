"""Who may reach the service from a browser: the ``Host`` and ``Origin`` rules, for HTTP and WebSocket alike.

A web page the operator opens could otherwise call a tokenless service on 127.0.0.1: directly
(``fetch``, ``new WebSocket``: WebSockets are not bound by the same-origin policy), or through
DNS rebinding, where the attacker's own host name is made to resolve to 127.0.0.1. So:

- ``Host`` must name one of ``ServeConfig.accepted_hosts()`` (rebinding keeps the attacker's name
  there); anything else is 421.
- ``Origin``, which browsers send with every cross-origin request and every WebSocket handshake,
  must be absent (a non-browser client), the service's own (same scheme-less ``host:port`` as
  ``Host``, so a TLS proxy in front keeps working) or one of ``ServeConfig.allowed_origins``;
  anything else is 403. A refused WebSocket handshake is closed before it is accepted (HTTP 403).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from emolens.serve.config import hostname
from emolens.serve.errors import error_response


def _origin(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


class HostOriginGuard:
    """ASGI middleware applying the module's rules to every HTTP request and WebSocket handshake."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str] | None, origins: tuple[str, ...]):
        self.app = app
        self.hosts = hosts
        self.origins = frozenset(_origin(origin) for origin in origins)

    def refusal(self, headers: Headers) -> tuple[int, str] | None:
        """``(status, one line)`` for a request the rules refuse, else None."""
        host = headers.get("host", "")
        if self.hosts is not None and hostname(host) not in self.hosts:
            return 421, f"host {host!r} is not served here: call the address the service listens on"
        origin = headers.get("origin")
        if origin is None or _origin(origin) in self.origins:
            return None
        parts = urlsplit(_origin(origin))
        if parts.scheme in ("http", "https") and parts.netloc == host.lower():
            return None
        return 403, f"cross-origin request from {origin!r} refused: start the service with --allow-origin " \
                    f"{origin} to let that site's pages call it"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused = self.refusal(Headers(scope=scope)) if scope["type"] in ("http", "websocket") else None
        if refused is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": refused[1][:120]})
        else:
            await error_response(*refused)(scope, receive, send)
