"""Request guards that apply to every route, as plain ASGI middleware (cheap per request):
x-correlator check and echo, media types, body size, security headers and metrics."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

XCORRELATOR = re.compile(r"^[a-zA-Z0-9\-_:;./<>{}]{0,256}$")
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
]
MAX_HEADER_BYTES = 16 * 1024  # all request headers together; a bearer token is ~1 KiB
DOCS_PATHS = ("/docs", "/redoc")  # interactive docs load their own scripts

REQUESTS = Counter("s2cvpn_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "s2cvpn_http_request_seconds", "HTTP request latency", ["method", "route"], buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5)
)


class BodyTooLarge(Exception):
    pass


def _error(status: int, code: str, message: str) -> tuple[dict[str, Any], bytes]:
    body = json.dumps({"status": status, "code": code, "message": message}).encode()
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *SECURITY_HEADERS],
    }
    return start, body


class GuardMiddleware:
    def __init__(self, app: ASGIApp, *, api_prefix: str, max_body_bytes: int) -> None:
        self.app = app
        self.api_prefix = api_prefix
        self.max_body_bytes = max_body_bytes
        # metric children by (method, route, status): ``labels()`` takes a lock and builds a key
        self._metrics: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])  # ASGI servers give header names in lower case
        correlator = headers.get(b"x-correlator")
        echo: list[tuple[bytes, bytes]] = []
        status_seen = 500

        async def reply(status: int, code: str, message: str) -> None:
            nonlocal status_seen
            status_seen = status
            start, body = _error(status, code, message)
            start["headers"] = [*start["headers"], *echo]
            await send(start)
            await send({"type": "http.response.body", "body": body})

        try:
            if sum(len(k) + len(v) for k, v in scope["headers"]) > MAX_HEADER_BYTES:
                await reply(400, "INVALID_ARGUMENT", f"the request headers exceed {MAX_HEADER_BYTES} bytes")
                return
            if correlator is not None:
                text = correlator.decode("latin-1")
                if not XCORRELATOR.match(text):
                    await reply(400, "INVALID_ARGUMENT", "x-correlator does not match the allowed pattern")
                    return
                if text:
                    echo = [(b"x-correlator", correlator)]
            problem = self._media_problem(scope, headers)
            if problem is not None:
                await reply(*problem)
                return
            received = 0

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body_bytes:
                        raise BodyTooLarge
                return message

            path: str = scope["path"]
            extra = echo if path.startswith(DOCS_PATHS) else [*echo, *SECURITY_HEADERS]

            async def send_with_headers(message: Message) -> None:
                nonlocal status_seen
                if message["type"] == "http.response.start":
                    status_seen = message["status"]
                    present = {k.lower() for k, _ in message.get("headers", [])}
                    message["headers"] = [*message.get("headers", []), *[(k, v) for k, v in extra if k not in present]]
                await send(message)

            try:
                await self.app(scope, limited_receive, send_with_headers)
            except BodyTooLarge:
                await reply(400, "INVALID_ARGUMENT", f"the request body exceeds {self.max_body_bytes} bytes")
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            key = (scope["method"], template, str(status_seen))
            metrics = self._metrics.get(key)
            if metrics is None:
                metrics = self._metrics[key] = (REQUESTS.labels(*key), LATENCY.labels(*key[:2]))
            metrics[0].inc()
            metrics[1].observe(time.perf_counter() - started)

    def _media_problem(self, scope: Scope, headers: dict[bytes, bytes]) -> tuple[int, str, str] | None:
        method = scope["method"]
        if method not in ("POST", "PATCH", "PUT") or not scope["path"].startswith(self.api_prefix):
            return None
        length = headers.get(b"content-length")
        if length is not None:
            try:
                if int(length) > self.max_body_bytes:
                    return 400, "INVALID_ARGUMENT", f"the request body exceeds {self.max_body_bytes} bytes"
            except ValueError:
                return 400, "INVALID_ARGUMENT", "invalid content-length"
        raw = headers.get(b"content-type")
        if raw is None:
            return None  # no body at all: the route answers "body missing" (400)
        media, _, params = raw.decode("latin-1").partition(";")
        media = media.strip().lower()
        allowed = {"application/json"} | ({"application/merge-patch+json"} if method == "PATCH" else set())
        if media not in allowed:
            return 415, "UNSUPPORTED_MEDIA_TYPE", f"content-type must be one of {', '.join(sorted(allowed))}"
        charset = params.strip().lower()
        if charset and charset.replace(" ", "") not in ("charset=utf-8", 'charset="utf-8"'):
            return 415, "UNSUPPORTED_MEDIA_TYPE", "only UTF-8 JSON is accepted"
        return None
