"""SSRF guard of notification sinks: loopback, private, link-local and their IPv6 and
IPv4-mapped forms, names resolving to them, and redirects, refused unless the operator
allows private sinks."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from s2cvpn.errors import InvalidArgument
from s2cvpn.service import sinks
from tests.support.payloads import session_request
from tests.support.servers import ApiClient, ServerProcess, free_port
from tests.support.sink import SinkServer

INTERNAL = [
    "https://127.0.0.1/hook", "https://127.1.2.3/hook", "https://10.0.0.5/hook", "https://172.16.0.1/hook",
    "https://192.168.1.1/hook", "https://169.254.169.254/latest/meta-data", "https://0.0.0.0/hook",
    "https://100.64.0.1/hook", "https://[::1]/hook", "https://[fc00::1]/hook", "https://[fd12:3456::1]/hook",
    "https://[fe80::1]/hook", "https://[::ffff:127.0.0.1]/hook", "https://[::ffff:169.254.169.254]/hook",
    "https://[::]/hook", "https://localhost/hook", "https://api.localhost/hook", "https://printer.local/hook",
    "https://intranet/hook", "https://224.0.0.1/hook",
]


@pytest.mark.parametrize("url", INTERNAL)
def test_internal_literals_and_names_refused(url: str) -> None:
    with pytest.raises(InvalidArgument):
        sinks.check_sink(url, allow_private=False)
    sinks.check_sink(url.replace("https", "http"), allow_private=True)  # labs and tests


@pytest.mark.parametrize("url", ["http://sink.example.com/x", "ftp://sink.example.com/x", "https://user:pw@sink.example.com/x", "sink.example.com"])
def test_scheme_and_credentials_refused(url: str) -> None:
    with pytest.raises(InvalidArgument):
        sinks.check_sink(url, allow_private=False)


def test_public_https_sink_accepted() -> None:
    sinks.check_sink("https://sink.example.com/events", allow_private=False)
    sinks.check_sink("https://93.184.215.14/events", allow_private=False)


def _resolving_to(monkeypatch: pytest.MonkeyPatch, *addresses: str) -> None:
    """This loop's name lookups answer ``addresses``, whatever the name."""
    loop = asyncio.get_running_loop()

    async def fake_getaddrinfo(host: str, port: int, *_args: Any, **_kwargs: Any) -> list[Any]:
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)) if ":" in address
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
            for address in addresses
        ]

    monkeypatch.setattr(loop, "getaddrinfo", fake_getaddrinfo)


@pytest.mark.parametrize("resolved", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "::1", "fc00::5", "fe80::1", "::ffff:127.0.0.1"])
def test_names_resolving_to_internal_addresses_are_never_called(monkeypatch: pytest.MonkeyPatch, resolved: str) -> None:
    """A name that resolves to an internal address (here beside a public one) is refused by
    the lookup whose addresses the connection would use: nothing is called (for 127.0.0.1,
    the loopback server standing for the internal target)."""
    target = _Recorder(204)

    async def run() -> None:
        _resolving_to(monkeypatch, resolved, "93.184.215.14")
        async with sinks.open_client(allow_private=False) as client:
            with pytest.raises(aiohttp.ClientConnectorDNSError) as refused:
                await client.post(f"http://rebind.example.com:{target.server.server_address[1]}/hook", data=b"{}")
            assert isinstance(refused.value.os_error, sinks.InternalAddress)

    try:
        asyncio.run(run())
        assert target.hits == 0
    finally:
        target.close()


def test_names_resolving_to_loopback_are_called_when_private_sinks_are_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above is what refused them: with private sinks allowed (labs, tests) the
    same name reaches the server."""
    target = _Recorder(204)

    async def run() -> int:
        _resolving_to(monkeypatch, "127.0.0.1")
        async with sinks.open_client(allow_private=True) as client:
            async with client.post(f"http://rebind.example.com:{target.server.server_address[1]}/hook", data=b"{}") as response:
                return response.status

    try:
        assert asyncio.run(run()) == 204
        assert target.hits == 1
    finally:
        target.close()


def test_a_cookie_one_sink_sets_is_never_sent_to_another(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sinks of different API consumers can share a host (a webhook service): what one of
    them sets, a session cookie say, must not go to the others with their events. The
    sink client keeps no cookies."""
    target = _Recorder(204, set_cookie="tenant=consumer-a; Path=/")

    async def run() -> None:
        _resolving_to(monkeypatch, "127.0.0.1")
        async with sinks.open_client(allow_private=True) as client:
            for consumer in ("consumer-a", "consumer-b"):
                async with client.post(f"http://hooks.example.com:{target.server.server_address[1]}/{consumer}", data=b"{}") as response:
                    assert response.status == 204

    try:
        asyncio.run(run())
        assert target.cookies == [None, None]
    finally:
        target.close()


def test_name_resolving_to_public_addresses_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    async def run() -> list[str]:
        _resolving_to(monkeypatch, "93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c")
        return [result["host"] for result in await sinks.PublicResolver().resolve("sink.example.com", 443, socket.AF_UNSPEC)]

    assert asyncio.run(run()) == ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]


@pytest.fixture
def strict_server(fresh_database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    env = {"S2CVPN_SINK_ALLOW_PRIVATE": "false"}
    with ServerProcess(database_url=fresh_database_url, port=free_port(), workdir=tmp_path, env=env) as running:
        yield running


def test_api_refuses_internal_sinks_when_private_not_allowed(strict_server: ServerProcess) -> None:
    with strict_server.api_client(name="strict") as api:
        for url in ("https://127.0.0.1/x", "https://[::1]/x", "https://169.254.169.254/x", "https://[::ffff:10.0.0.1]/x",
                    "https://localhost/x", "http://sink.example.com/x"):
            response = api.post("/sessions", json=session_request(sink=url))
            assert response.status_code == 400, (url, response.text)
            assert response.json()["code"] == "INVALID_ARGUMENT"
        assert api.get("/sessions").json()["pagination"]["totalCount"] == 0


class _Recorder:
    """A loopback HTTP server: answers every POST with ``status`` (and a Location)."""

    def __init__(self, status: int, location: str = "", set_cookie: str = "") -> None:
        self.hits = 0
        self.cookies: list[str | None] = []  # the Cookie header of each POST
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("content-length", "0")))
                recorder.hits += 1
                recorder.cookies.append(self.headers.get("cookie"))
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                if set_cookie:
                    self.send_header("Set-Cookie", set_cookie)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = SinkServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_sink_redirects_are_not_followed(client: ApiClient) -> None:
    """The test server allows loopback sinks; a sink that redirects elsewhere (here another
    loopback server standing for an internal target) never makes the service call there."""
    inner = _Recorder(204)
    outer = _Recorder(307, f"{inner.url}/internal")
    try:
        session_id = client.post("/sessions", json=session_request(sink=f"{outer.url}/hook")).json()["sessionId"]
        client.wait_status(session_id, "AVAILABLE")
        deadline = time.monotonic() + 10
        while outer.hits == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        assert outer.hits >= 1
        assert inner.hits == 0
    finally:
        outer.close()
        inner.close()
