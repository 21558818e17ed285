"""Helpers for the scale and fault tests: real ``s2cvpn`` processes (API replicas and
workers) on one PostgreSQL database, their Prometheus counters, a private throw-away
PostgreSQL cluster, a sink that can go down, and the storage invariants to check."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.servers import PREFIX, free_port, register_client
from tests.support.sink import SinkServer

PG_BIN = Path(os.environ.get("S2CVPN_PG_BIN", "/usr/lib/postgresql/15/bin"))
FAST_ENV = {
    "S2CVPN_SINK_ALLOW_PRIVATE": "true",
    "S2CVPN_RETENTION_SECONDS": "2",
    "S2CVPN_WORKER_POLL_SECONDS": "0.2",
    "S2CVPN_NOTIFY_BACKOFF_SECONDS": "0.2",
    "S2CVPN_RECONCILE_INTERVAL_SECONDS": "3600",  # the model network is per process: keep counts clean
    "S2CVPN_PUBLIC_URL": "http://s2cvpn.test",  # one deployment behind one name: one token issuer
}


class Proc:
    """One ``python -m s2cvpn <args>`` process with its own log file."""

    def __init__(self, args: list[str], *, database_url: str, workdir: Path, env: dict[str, str], name: str, port: int) -> None:
        self.args, self.name, self.port = args, name, port
        self.url = f"http://127.0.0.1:{port}"
        self.env = {**os.environ, "S2CVPN_DATABASE_URL": database_url, **FAST_ENV, **env}
        self.workdir = workdir
        self.log = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, ready_path: str, timeout: float = 40.0) -> Proc:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "s2cvpn", *self.args], env=self.env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.tail()}")
            try:
                if httpx.get(self.url + ready_path, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout}s:\n{self.tail()}")

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def terminate(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return values


class Cluster:
    """API replicas and workers of one deployment; everything is stopped on exit."""

    def __init__(self, database_url: str, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.database_url, self.workdir, self.env = database_url, workdir, env or {}
        self.procs: list[Proc] = []

    def serve(self, *, worker: bool = True, env: dict[str, str] | None = None) -> Proc:
        port = free_port()
        args = ["serve", "--port", str(port), "--log-level", "warning", *([] if worker else ["--no-worker"])]
        proc = Proc(args, database_url=self.database_url, workdir=self.workdir, env={**self.env, **(env or {})},
                    name=f"serve-{port}", port=port)
        self.procs.append(proc)
        return proc.start("/health/ready")

    def worker(self, *, env: dict[str, str] | None = None) -> Proc:
        port = free_port()
        args = ["worker", "--metrics-port", str(port), "--log-level", "info"]
        proc = Proc(args, database_url=self.database_url, workdir=self.workdir, env={**self.env, **(env or {})},
                    name=f"worker-{port}", port=port)
        self.procs.append(proc)
        return proc.start("/metrics")

    def counter(self, name: str, **labels: str) -> float:
        """A counter summed over every live process (labels not given are summed over)."""
        total = 0.0
        for proc in self.procs:
            if proc.process is None or proc.process.poll() is not None:
                continue
            for (sample, sample_labels), value in proc.metrics().items():
                if sample == name and all(dict(sample_labels).get(k) == v for k, v in labels.items()):
                    total += value
        return total

    def stop(self) -> None:
        for proc in self.procs:
            if proc.process is not None and proc.process.poll() is None:
                proc.process.send_signal(signal.SIGTERM)
        for proc in self.procs:
            if proc.process is not None:
                try:
                    proc.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class Api(httpx.Client):
    def __init__(self, base_url: str, token: str) -> None:
        super().__init__(base_url=base_url + PREFIX, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def client_token(database_url: str, url: str, name: str) -> str:
    client_id, secret = register_client(database_url, name)
    response = httpx.post(f"{url}/oauth2/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret), timeout=30)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


# ---- the database, read directly -------------------------------------------------------
def query(database_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        connection = await asyncpg.connect(database_url, timeout=10)
        try:
            return list(await connection.fetch(sql, *args))
        finally:
            await connection.close()

    return asyncio.run(run())


def storage_problems(database_url: str) -> list[str]:
    """What is wrong with capacity, pool slots and leftovers, as readable lines ([] = clean)."""
    problems = []
    for row in query(  # what a session holds is its plan's demands until it is released
        database_url,
        """SELECT l.resource_id, l.reserved_mbps, COALESCE(h.held, 0) AS held
             FROM resource_load l LEFT JOIN (
                  SELECT d.key AS resource_id, SUM(d.value::bigint) AS held
                    FROM sessions s, json_each_text(s.plan -> 'demands') d
                   WHERE s.released_at IS NULL GROUP BY d.key) h USING (resource_id)
            WHERE l.reserved_mbps <> COALESCE(h.held, 0)""",
    ):
        problems.append(f"resource {row['resource_id']}: load {row['reserved_mbps']} != held by unreleased sessions {row['held']}")
    for row in query(database_url, "SELECT count(*) AS n FROM resource_load WHERE reserved_mbps < 0"):
        if row["n"]:
            problems.append(f"{row['n']} negative loads")
    for row in query(database_url, "SELECT session_id FROM sessions WHERE released_at IS NULL AND slot IS NULL"):
        problems.append(f"live session {row['session_id']} without a pool slot")
    return problems


def wait_until(check: Any, timeout: float, message: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{message} (after {timeout}s; last {last!r})")


# ---- a private PostgreSQL cluster that the test may stop and start ---------------------
class PrivatePostgres:
    """``initdb`` into a temp dir as user postgres, on a free port, trust auth."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="s2cvpn-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        shutil.chown(self.folder, "postgres", "postgres")

    def _as_postgres(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *command], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)

    def init(self) -> PrivatePostgres:
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        return self

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.folder / "pg.log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.folder, ignore_errors=True)


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    cluster = PrivatePostgres().init()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()


# ---- a sink that can be taken down and brought back on the same port --------------------
class FlakySink:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/events"
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server: SinkServer | None = None

    def up(self) -> None:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                import json

                body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))) or b"null")
                with sink._lock:
                    sink.received.append(body)
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = SinkServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.received)
