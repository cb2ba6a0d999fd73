"""Every failure a client can cause is one ``ApiError``: a status code and one line of JSON.

The handlers installed by ``install_handlers`` turn ``ApiError``, FastAPI's validation errors,
unknown routes and anything unexpected into ``{"error": "<one line>"}``, so no response ever
carries a traceback. Unexpected errors are logged in full on the server and answered 500; a
client hanging up mid-request is expected, and logged as one line.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

log = logging.getLogger("emolens.serve")


class ApiError(Exception):
    """A request the service refuses: ``status`` (4xx/503), a one-line ``message``, extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = " ".join(message.split())
        self.headers = headers or {}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": " ".join(message.split())}, status_code=status, headers=headers)


def install_handlers(app: FastAPI) -> None:
    """Answer every error as one JSON line (see the module docstring)."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.message, error.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        if first.get("type") == "json_invalid":  # its "loc" is a character offset, its "msg" FastAPI's
            return error_response(422, "the request body is not valid JSON")
        where = ".".join(str(part) for part in first.get("loc", ()))
        return error_response(422, f"invalid request: {where}: {first.get('msg', 'invalid value')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return error_response(error.status_code, str(error.detail), getattr(error, "headers", None))

    @app.exception_handler(ClientDisconnect)
    async def _hung_up(request: Request, error: ClientDisconnect) -> JSONResponse:
        log.warning("client %s hung up during %s %s", request.client.host if request.client else "?",
                    request.method, request.url.path)
        return error_response(400, "the client hung up")  # nobody reads it: the connection is gone

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error; the server log has the details")
