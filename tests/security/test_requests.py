"""Hostile requests against the real server: nothing a client sends gives a 500, a stack
trace, an echoed injection or unbounded work; every response carries the security headers."""

from __future__ import annotations

import socket
import time
import uuid

import httpx
import pytest

from tests.support.payloads import session_request
from tests.support.servers import PREFIX, ApiClient, ServerProcess

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
    "x-frame-options": "DENY",
}


def assert_camara_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status and body["code"] and body["message"]
    assert "Traceback" not in response.text and "File \"" not in response.text


def raw_request(server: ServerProcess, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks):
                break
        return b"".join(chunks)


@pytest.mark.parametrize(
    "value",
    ["has space", 'quote"', "semi;colon=equals", "a" * 257, "percent%0d%0aSet-Cookie:x", "tab\tinside", "ünïcode"],
    ids=["space", "quote", "equals", "too-long", "encoded-crlf", "tab", "non-ascii"],
)
def test_invalid_x_correlator_is_400_and_not_echoed(client: ApiClient, value: str) -> None:
    response = client.get("/sessions", headers={"x-correlator": value.encode("utf-8")})  # type: ignore[dict-item]
    assert_camara_error(response, 400)
    assert "x-correlator" not in response.headers
    assert value not in response.text


@pytest.mark.parametrize("separator", [b"\r\n", b"\n", b"\r"], ids=["crlf", "lf", "cr"])
def test_header_splitting_in_x_correlator_is_refused(server: ServerProcess, client: ApiClient, separator: bytes) -> None:
    """A raw CR/LF inside the header never becomes a second header in the response."""
    request = (
        f"GET {PREFIX}/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {client.token}\r\n".encode()
        + b"x-correlator: abc" + separator + b"Set-Cookie: injected=1\r\nConnection: close\r\n\r\n"
    )
    answer = raw_request(server, request)
    status_line = answer.split(b"\r\n", 1)[0]
    if separator == b"\r\n":  # a well-formed second header: the app sees x-correlator "abc" only
        assert status_line.endswith(b"200 OK"), answer[:200]
    else:  # a bare CR or LF is not HTTP: refused by the server before the app
        assert b" 400 " in status_line, answer[:200]
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert b"set-cookie" not in head and b"injected" not in head


def test_oversized_body_is_refused_fast(client: ApiClient) -> None:
    big = b'{"serviceName": "' + b"x" * (64 * 1024 + 1) + b'"}'
    started = time.monotonic()
    assert_camara_error(client.post("/sessions", content=big, headers={"content-type": "application/json"}), 400)

    def chunks():  # no content-length: the limit is counted while reading
        for _ in range(200):
            yield b"x" * 4096

    assert_camara_error(client.post("/sessions", content=chunks(), headers={"content-type": "application/json"}), 400)
    assert time.monotonic() - started < 5


def test_oversized_headers_are_refused(client: ApiClient) -> None:
    response = client.get("/sessions", headers={"x-padding": "a" * 20_000})
    assert_camara_error(response, 400)
    many = {f"x-h{i}": "v" * 200 for i in range(100)}
    assert_camara_error(client.get("/sessions", headers=many), 400)


@pytest.mark.parametrize("depth", [1_000, 10_000, 30_000])
def test_deeply_nested_json_is_400(client: ApiClient, depth: int) -> None:
    for body in (b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth, b"[" * depth):
        response = client.post("/sessions", content=body, headers={"content-type": "application/json"})
        assert_camara_error(response, 400)
    assert client.get("/sessions").status_code == 200  # the server is still fine


def test_huge_arrays_are_refused_fast(client: ApiClient) -> None:
    started = time.monotonic()
    body = session_request()
    body["applicationServers"] = [{"ipv4Address": "10.0.0.1"}] * 2000
    assert_camara_error(client.post("/sessions", json=body), 400)
    flat = b'{"applicationServers": [' + b",".join([b"0"] * 30_000) + b"]}"
    assert_camara_error(client.post("/assessment", content=flat, headers={"content-type": "application/json"}), 400)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    "value",
    [1e308, -1e308, 10**40, "NaN", None, True, [], {}, "\u0000", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢"],
    ids=["huge-float", "negative-huge", "bigint", "nan-string", "null", "bool", "list", "object", "nul", "astral"],
)
def test_odd_values_never_give_5xx(client: ApiClient, value: object) -> None:
    for field in ("guaranteeBandwidth", "serviceName", "duration", "sla", "applicationServers"):
        response = client.post("/sessions", json=session_request(**{field: value}))
        assert response.status_code < 500, response.text
    raw = b'{"guaranteeBandwidth": NaN, "sla": Infinity}'
    assert client.post("/sessions", content=raw, headers={"content-type": "application/json"}).status_code == 400


@pytest.mark.parametrize("path", ["/sessions", f"/sessions/{uuid.uuid4()}", "/sessions/not-a-uuid", "/nothing"])
def test_security_headers_on_every_response(client: ApiClient, path: str) -> None:
    for response in (client.get(path), httpx.get(f"{client.base_url}{path}"), client.get(path, headers={"x-correlator": "bad value"})):
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (path, response.status_code, dict(response.headers))
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert "server: " not in response.text.lower()


def test_cors_is_off_by_default(client: ApiClient) -> None:
    preflight = client.options(
        "/sessions", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in preflight.headers
    assert preflight.status_code < 500
    simple = client.get("/sessions", headers={"Origin": "https://evil.example"})
    assert simple.status_code == 200 and "access-control-allow-origin" not in simple.headers
