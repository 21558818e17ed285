"""Real ``s2cvpn serve`` processes for tests, and an API client bound to one OAuth client."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from s2cvpn.config import ALL_SCOPES

PREFIX = "/site-to-cloud-vpn/v0.1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def register_client(database_url: str, name: str, scopes: tuple[str, ...] = ALL_SCOPES) -> tuple[str, str]:
    """Register an OAuth client straight in the server's database (what the CLI does)."""
    from s2cvpn.auth.clients import create_client
    from s2cvpn.storage.db import create_engine, session_factory

    async def run() -> tuple[str, str]:
        engine = create_engine(database_url)
        try:
            async with session_factory(engine)() as db:
                return await create_client(db, name=name, scopes=list(scopes), now=datetime.now(UTC))
        finally:
            await engine.dispose()

    return asyncio.run(run())


class ApiClient(httpx.Client):
    """httpx client on the versioned API root with a bearer token."""

    def __init__(self, base_url: str, token: str, client_id: str) -> None:
        super().__init__(base_url=base_url + PREFIX, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        self.client_id = client_id
        self.token = token

    def wait_status(self, session_id: str, status: str, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            response = self.get(f"/sessions/{session_id}")
            last = response.json() if response.status_code == 200 else response.status_code
            if response.status_code == 200 and last["status"] == status:
                return last  # type: ignore[no-any-return]
            time.sleep(0.05)
        raise AssertionError(f"session {session_id} did not reach {status}; last seen {last}")

    def wait_gone(self, session_id: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.get(f"/sessions/{session_id}").status_code == 404:
                return
            time.sleep(0.05)
        raise AssertionError(f"session {session_id} still readable after {timeout}s")

    def delete_all_sessions(self) -> None:
        page = self.get("/sessions", params={"perPage": 100})
        if page.status_code != 200:
            return
        for item in page.json()["items"]:
            self.delete(f"/sessions/{item['sessionId']}")
        for item in page.json()["items"]:
            self.wait_gone(item["sessionId"])


class ServerProcess:
    """``python -m s2cvpn serve`` on a free port, stopped (or killed) by the test."""

    def __init__(
        self,
        *,
        database_url: str,
        port: int,
        workdir: Path,
        env: dict[str, str] | None = None,
        log_level: str = "warning",
        ready_path: str = "/health/ready",
    ) -> None:
        self.log_level = log_level
        self.ready_path = ready_path
        self.database_url = database_url
        self.port = port
        self.workdir = workdir
        self.url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "S2CVPN_DATABASE_URL": database_url,
            "S2CVPN_PUBLIC_URL": self.url,
            "S2CVPN_SINK_ALLOW_PRIVATE": "true",
            "S2CVPN_RETENTION_SECONDS": "3",
            "S2CVPN_WORKER_POLL_SECONDS": "0.2",
            "S2CVPN_NOTIFY_BACKOFF_SECONDS": "0.2",
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"server-{port}.log"

    def start(self, timeout: float = 30.0) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "s2cvpn", "serve", "--port", str(self.port), "--log-level", self.log_level],
                env=self.env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}{self.ready_path}", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def token(self, client_id: str, secret: str, scope: str | None = None) -> str:
        data = {"grant_type": "client_credentials"}
        if scope:
            data["scope"] = scope
        response = httpx.post(f"{self.url}/oauth2/token", data=data, auth=(client_id, secret), timeout=30)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    @contextmanager
    def api_client(self, *, name: str, scopes: tuple[str, ...] = ALL_SCOPES) -> Iterator[ApiClient]:
        client_id, secret = register_client(self.database_url, name, scopes)
        with ApiClient(self.url, self.token(client_id, secret), client_id) as api:
            yield api
