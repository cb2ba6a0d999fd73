"""The token rule: with a token configured, a request must carry ``Authorization: Bearer <token>``.

Browsers cannot set headers on a WebSocket, so the stream also accepts the token as a
subprotocol ``bearer.<token>`` (next to the ``emolens`` protocol), as Kubernetes' API does; never in
the URL, where access logs would keep it. Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac

from emolens.serve.errors import ApiError

STREAM_PROTOCOL = "emolens"
_BEARER_PROTOCOL = "bearer."


def _matches(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, else None."""
    scheme, _, value = (authorization or "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def check_request(token: str | None, authorization: str | None) -> None:
    """Raise 401 unless no token is configured or the header carries it."""
    if token is None:
        return
    if not _matches(bearer(authorization), token):
        raise ApiError(401, "missing or wrong token: send the header 'Authorization: Bearer <token>'",
                       {"WWW-Authenticate": "Bearer"})


def stream_allowed(token: str | None, authorization: str | None, protocols: list[str]) -> bool:
    """True when a WebSocket handshake carries the token (header or ``bearer.<token>`` subprotocol)."""
    if token is None or _matches(bearer(authorization), token):
        return True
    return any(_matches(p[len(_BEARER_PROTOCOL):], token) for p in protocols if p.startswith(_BEARER_PROTOCOL))
