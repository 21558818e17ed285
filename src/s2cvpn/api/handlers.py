"""Every failure becomes a CAMARA error body ``{status, code, message}``; nothing a
client sends produces a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from s2cvpn.errors import S2CError
from s2cvpn.storage.driver import DatabaseUnavailable

log = logging.getLogger(__name__)
RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}
HTTP_CODES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    413: "INVALID_ARGUMENT",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "TOO_MANY_REQUESTS",
    503: "UNAVAILABLE",
}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"status": status, "code": code, "message": message[:512]}, status_code=status, headers=headers)


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def describe_validation(errors: list[dict[str, Any]]) -> tuple[str, str]:
    """(code, message) for pydantic errors: numeric bounds are OUT_OF_RANGE."""
    first = errors[0]
    kind = first.get("type", "")
    if kind == "json_invalid":
        return "INVALID_ARGUMENT", "the request body is not valid JSON"
    if kind == "missing" and tuple(first.get("loc", ())) == ("body",):
        return "INVALID_ARGUMENT", "the request body is missing"
    code = "OUT_OF_RANGE" if kind in RANGE_ERRORS else "INVALID_ARGUMENT"
    message = first.get("msg", "invalid value")
    if kind == "extra_forbidden":
        message = "unknown property"
    return code, f"{_location(tuple(first.get('loc', ())))}: {message}"


def install(app: FastAPI) -> None:
    @app.exception_handler(S2CError)
    async def _service_error(_request: Request, exc: S2CError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        code, message = describe_validation(list(exc.errors()))
        return error_response(400, code, message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "INTERNAL" if exc.status_code >= 500 else "INVALID_ARGUMENT")
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        return error_response(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(DatabaseUnavailable)
    @app.exception_handler(OperationalError)
    @app.exception_handler(DBAPIError)
    async def _database_down(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", type(exc).__name__)
        return error_response(503, "UNAVAILABLE", "the service's database is unavailable; try again", {"Retry-After": "2"})

    @app.exception_handler(OSError)
    async def _os_error(_request: Request, exc: OSError) -> JSONResponse:
        log.warning("backend unreachable: %s", type(exc).__name__)
        return error_response(503, "UNAVAILABLE", "a backend of the service is unreachable; try again", {"Retry-After": "2"})

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(500, "INTERNAL", "an internal error occurred")
