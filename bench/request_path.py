"""The API's request path in-process, without HTTP: CPU per ASGI call against a bare FastAPI.

    .venv/bin/python bench/request_path.py [--backends sqlite,postgres] [--calls 5000] [--sessions 20]

For each backend, on a fresh database, the application is started (lifespan, embedded
worker) and called directly as an ASGI app, one request at a time, with no server and no
socket. Printed: CPU microseconds of this process per call for

- hello: ``GET /hello`` on a bare ``FastAPI()`` with one route (the reference);
- health: ``GET /health/live`` (our middleware and routing, no auth, no database);
- getSession and listSessions (a page of ``--sessions``): bearer token, database read, rendering;

and each one's ratio to hello. Unlike ``bench/load.py`` this leaves out uvicorn, the
socket and wrk, which share the CPUs there and are the same for every route, so it shows
what our own code adds to a request, with little noise. On PostgreSQL each call waits for
its query alone, so the event loop's wake-ups are not shared between requests as they are
under load: the figure is higher than the per-request CPU under load.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from fastapi import FastAPI  # noqa: E402

from bench.load import PG_ADMIN, SESSION, _pg, clone_sessions  # noqa: E402
from s2cvpn.app import create_app  # noqa: E402
from s2cvpn.config import Settings  # noqa: E402
from tests.support.servers import PREFIX, register_client  # noqa: E402

Asgi = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
WARM_CALLS = 300


def request_scope(method: str, path: str, headers: list[tuple[bytes, bytes]], query: bytes = b"") -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80), "state": {},
    }


async def call(app: Asgi, scope: dict[str, Any], body: bytes = b"") -> tuple[int, bytes]:
    """One request through ``app``; its status and body."""
    answer: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        else:
            answer["body"] += message.get("body", b"")

    await app(dict(scope), receive, send)
    return answer["status"], answer["body"]


async def cpu_per_call(app: Asgi, scope: dict[str, Any], calls: int) -> float:
    """CPU microseconds per call, after a warm-up; every answer must be a 200."""
    for _ in range(WARM_CALLS):
        await call(app, scope)
    began = time.process_time()
    for _ in range(calls):
        status, body = await call(app, scope)
        if status != 200:
            raise RuntimeError(f"{scope['path']} answered {status}: {body[:200]!r}")
    return (time.process_time() - began) / calls * 1e6


async def bench_client(app: Asgi, database_url: str) -> tuple[str, list[tuple[bytes, bytes]]]:
    """A client registered in the database, and the headers of its JSON requests with a
    bearer token from the application's token endpoint."""
    client_id, secret = await asyncio.to_thread(register_client, database_url, "bench")
    basic = b"Basic " + base64.b64encode(f"{client_id}:{secret}".encode())
    form = [(b"authorization", basic), (b"content-type", b"application/x-www-form-urlencoded")]
    _status, body = await call(app, request_scope("POST", "/oauth2/token", form), b"grant_type=client_credentials")
    return client_id, [(b"authorization", b"Bearer " + json.loads(body)["access_token"].encode()), (b"content-type", b"application/json")]


def bare_hello() -> FastAPI:
    hello = FastAPI()

    @hello.get("/hello")
    async def answer() -> dict[str, str]:
        return {"message": "hello"}

    return hello


async def measure(database_url: str, args: argparse.Namespace) -> dict[str, float]:
    settings = Settings(database_url=database_url, reconcile_interval_seconds=3600, measure_interval_seconds=3600)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        client_id, bearer = await bench_client(app, database_url)
        status, body = await call(app, request_scope("POST", f"{PREFIX}/sessions", bearer), json.dumps(SESSION).encode())
        assert status == 201, body
        session_id = json.loads(body)["sessionId"]
        await asyncio.to_thread(clone_sessions, database_url, session_id, args.sessions - 1, client_id=client_id)
        routes = {
            "hello": (bare_hello(), request_scope("GET", "/hello", [])),
            "health": (app, request_scope("GET", "/health/live", [])),
            "getSession": (app, request_scope("GET", f"{PREFIX}/sessions/{session_id}", bearer)),
            "listSessions": (app, request_scope("GET", f"{PREFIX}/sessions", bearer, f"perPage={args.sessions}".encode())),
        }
        return {name: await cpu_per_call(target, scope, args.calls) for name, (target, scope) in routes.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--sessions", type=int, default=20, help="sessions of the client, all on the listed page (at most 100)")
    args = parser.parse_args()
    print(f"\nCPU per ASGI call, in-process, {args.calls} calls each\n")
    print("| backend | route | us/call | vs hello |\n|---|---|---|---|")
    for backend in args.backends.split(","):
        if backend == "sqlite":
            folder = tempfile.mkdtemp(prefix="s2cvpn-bench-")
            figures = asyncio.run(measure(f"sqlite:///{folder}/bench.db", args))
        else:
            name = f"s2cvpn_bench_{uuid.uuid4().hex[:8]}"
            asyncio.run(_pg(PG_ADMIN, f'CREATE DATABASE "{name}"'))
            try:
                figures = asyncio.run(measure(PG_ADMIN.rsplit("/", 1)[0] + "/" + name, args))
            finally:
                asyncio.run(_pg(PG_ADMIN, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        for route, micros in figures.items():
            print(f"| {backend} | {route} | {micros:.0f} | {micros / figures['hello']:.1f}x |")


if __name__ == "__main__":
    main()
