"""HTTP load benchmark: the API against a bare FastAPI "hello" on the same server setup.

    .venv/bin/python bench/load.py [--backends sqlite,postgres] [--seconds 10] [--connections 64]
                                   [--sessions 1000] [--million] [--loop asyncio|uvloop] [--sink]
                                   [--routes getSession,listSessions,create+delete]

For each backend it starts a real ``s2cvpn serve`` (uvicorn, one process, embedded
worker, as shipped) on a fresh database, and, alongside, a bare FastAPI app with one
``GET /hello`` route served by the same uvicorn settings and event loop. The load generator is **wrk**
(``apt-get install wrk``; a separate C process, 2 threads) with Lua scripts that carry
the bearer token; each figure is one wrk run of ``--seconds`` at ``--connections``:

- hello: ``GET /hello`` on the bare app (the ceiling on this machine), run before each
  route and after the last; each route's ratio is to the mean of the two runs around it,
  since this machine's speed drifts within a run (the hello row gives the mean and range);
- getSession: ``GET /sessions/{id}`` of one of the client's sessions, a different one at
  random each time (a server that coalesced or cached reads of one id would otherwise
  measure that, not a read);
- listSessions: ``GET /sessions?perPage=20`` (page 1);
- create+delete: alternating ``POST /sessions`` and ``DELETE`` of the one just created
  (rate given in requests/s; a pair is two requests). Each pair queues a provisioning and
  a teardown job; the rate is the requests over the run *plus* the time the embedded
  worker takes afterwards to finish that backlog, so deferred work is not counted as done.

The client owns ``--sessions`` sessions (one created through the API, the rest cloned
from it in SQL). ``--million`` (PostgreSQL only) then clones 1,000,000 more sessions
into the same database (spread over 1,000 other clients), vacuums it as autovacuum would
have in steady state, measures getSession and listSessions again, then getSession once
more (the first run after the bulk insert carries a transient p99 tail), and prints
EXPLAIN ANALYZE of the expiry sweep query with nothing due and with everything due (the sweep reads at most its batch either way).

Below the table, each route's requests as the server's own latency histogram saw them
(``/metrics``, from the request's arrival in the app to its response): mean and share over
50 ms per method and route, so a create's and a delete's part of create+delete show apart.

``--sink`` gives the sessions of create+delete a sink: a bare uvicorn app on this machine
that answers 204 and counts (``S2CVPN_SINK_ALLOW_PRIVATE`` lets the server post to it).
Printed: the events it received by the end of the run and its drain, and how long after
that the worker took to deliver the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.support.servers import PREFIX, free_port, register_client  # noqa: E402

PG_ADMIN = os.environ.get("S2CVPN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
SESSION = {
    "serviceName": "bench",
    "customerEdge": {"type": "site", "primaryIpAddress": {"ipv4Address": "198.51.100.30"}},
    "providerEdge": {"type": "cloud", "primaryIpAddress": {"ipv4Address": "203.0.113.1"}},
    "applicationServers": [{"ipv4Address": "10.250.0.1/32"}],
    "sla": "A",
    "guaranteeBandwidth": 1,
}
DONE_LUA = """
done = function(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format('\\nRESULT {"requests": %d, "seconds": %f, "p50_ms": %f, "p99_ms": %f, "errors": %d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000, errors))
end
"""
GET_ANY_LUA = """
local ids = {%s}
request = function()
  return wrk.format("GET", "%s/sessions/" .. ids[math.random(#ids)], nil, nil)
end
"""
CREATE_DELETE_LUA = """
local counter, queue = 0, {}
local body_head = %s
local threads = 0
setup = function(thread) threads = threads + 1; thread:set("tid", threads) end
request = function()
  if #queue > 0 then
    local id = table.remove(queue)
    return wrk.format("DELETE", "%s/sessions/" .. id, nil, nil)
  end
  counter = counter + 1
  local n = counter
  local server = string.format("10.%%d.%%d.%%d/32", 100 + (tid or 0), math.floor(n / 256) %% 256, n %% 256)
  return wrk.format("POST", "%s/sessions", nil, string.format(body_head, server))
end
response = function(status, headers, body)
  if status == 201 then
    local id = string.match(body, '"sessionId"%%s*:%%s*"([%%x%%-]+)"')
    if id then table.insert(queue, id) end
  end
end
"""


def inside_the_app(base: str) -> dict[str, list[float]]:
    """The server's own latency histogram (``s2cvpn_http_request_seconds``, from the
    request's arrival in the app to its last byte handed to the server) so far, per method
    and route: [requests, seconds in all, requests under 50 ms]."""
    seen: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(httpx.get(f"{base}/metrics").text):
        if family.name != "s2cvpn_http_request_seconds":
            continue
        for sample in family.samples:
            figures = seen.setdefault(f"{sample.labels['method']} {sample.labels['route']}", [0.0, 0.0, 0.0])
            if sample.name.endswith("_count"):
                figures[0] = sample.value
            elif sample.name.endswith("_sum"):
                figures[1] = sample.value
            elif sample.name.endswith("_bucket") and float(sample.labels["le"]) == 0.05:
                figures[2] = sample.value
    return seen


def inside_during(before: dict[str, list[float]], after: dict[str, list[float]]) -> str:
    """What the app's histogram says of the requests between two readings, per route."""
    parts = []
    for route, (count, total, fast) in sorted(after.items()):
        count0, total0, fast0 = before.get(route, (0.0, 0.0, 0.0))
        if count - count0 >= 100:  # the route measured, not the bench's own reads
            mean_ms = (total - total0) / (count - count0) * 1000
            parts.append(f"{route} {mean_ms:.1f} ms mean, {1 - (fast - fast0) / (count - count0):.0%} over 50 ms")
    return "; ".join(parts)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU the process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, script: str, *, seconds: float, connections: int, token: str | None, server: int) -> dict[str, float]:
    headers = f'wrk.headers["Authorization"] = "Bearer {token}"\nwrk.headers["Content-Type"] = "application/json"\n' if token else ""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(headers + script + DONE_LUA)
    cpu = cpu_seconds(server)
    try:
        out = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{int(seconds)}s", "--timeout", "10s", "-s", handle.name, url],
            capture_output=True, text=True, timeout=seconds + 60, check=True,
        ).stdout
    finally:
        os.unlink(handle.name)
    result = json.loads(out.split("RESULT ", 1)[1].splitlines()[0])
    result["rps"] = result["requests"] / result["seconds"]
    result["cpu_s"] = cpu_seconds(server) - cpu
    return result


# ---- servers ------------------------------------------------------------------------------
HELLO_APP = """
from fastapi import FastAPI
import uvicorn, sys
app = FastAPI()
@app.get("/hello")
async def hello():
    return {"message": "hello"}
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False, timeout_graceful_shutdown=20, proxy_headers=True,
            loop=sys.argv[2])
"""


SINK_APP = """
import sys, uvicorn
received = 0
async def app(scope, receive, send):
    global received
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    if scope["method"] == "POST":
        received += 1
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
    else:  # GET: how many events so far
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": str(received).encode()})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def start(command: list[str], env: dict[str, str], url: str, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(log.read_text()[-2000:])
        try:
            httpx.get(url, timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{command} did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


# ---- data ---------------------------------------------------------------------------------
async def _pg(url: str, *statements: str) -> list[list[tuple]]:
    import asyncpg

    connection = await asyncpg.connect(url, timeout=10)
    try:
        return [[tuple(r) for r in await connection.fetch(s)] for s in statements]
    finally:
        await connection.close()


def rows_of(database_url: str, statement: str) -> list[tuple]:
    """The rows of one query, on either backend (the bench's own reads, not the service's)."""
    if database_url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as connection:
            return connection.execute(statement).fetchall()
    return asyncio.run(_pg(database_url, statement))[0]


def pending_jobs(database_url: str) -> int:
    return int(rows_of(database_url, "SELECT count(*) FROM jobs")[0][0])


def pending_events(database_url: str) -> int:
    return int(rows_of(database_url, "SELECT count(*) FROM events WHERE next_attempt_at IS NOT NULL")[0][0])


def drain_seconds(database_url: str, *, limit: float = 300, pending: Callable[[str], int] = pending_jobs) -> float:
    """How long after the load stopped the embedded worker still had work (``pending``) to do."""
    began = time.monotonic()
    while pending(database_url) and time.monotonic() - began < limit:
        time.sleep(0.05)
    return time.monotonic() - began


def session_ids(database_url: str, client_id: str) -> list[str]:
    return [row[0] for row in rows_of(database_url, f"SELECT session_id FROM sessions WHERE client_id = '{client_id}'")]


def clone_sessions(database_url: str, template: str, count: int, *, client_id: str | None) -> float:
    """Copy the template session ``count`` times (new ids; owner ``client_id`` or 1,000 others)."""
    from sqlalchemy import text

    from s2cvpn.storage.db import create_engine
    from s2cvpn.storage.tables import SessionRow

    columns = [c.name for c in SessionRow.__table__.columns]
    postgres = database_url.startswith("postgres")
    owner = f"'{client_id}'" if client_id else ("'bulk-' || (g % 1000)" if postgres else "'bulk-' || (g % 1000)")
    overrides = {
        "session_id": "gen_random_uuid()::text" if postgres else (  # a version-4 UUID, as the API's ids are
            "lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-a'"
            " || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))"
        ),
        "client_id": owner,
        "dedup_key": "md5(g::text || random()::text)" if postgres else "hex(randomblob(16))",
        "created_at": "created_at + g * interval '1 millisecond'" if postgres else "created_at",
        # the clones hold no pool slot (the template's is unique to it) and no capacity: no
        # counter counts them, so a released clone gives nothing back if it is ever torn down
        "slot": "NULL",
        "released_at": "created_at",
    }
    select_list = ", ".join(overrides.get(c, c) for c in columns)
    series = "generate_series(1, :n) AS g" if postgres else "(WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < :n) SELECT g FROM s)"
    statement = text(f"INSERT INTO sessions ({', '.join(columns)}) SELECT {select_list} FROM sessions, {series} WHERE session_id = :t")

    async def run() -> float:
        engine = create_engine(database_url)
        started = time.perf_counter()
        try:
            async with engine.begin() as connection:
                await connection.execute(statement, {"n": count, "t": template})
            if postgres:
                async with engine.connect() as connection:
                    await connection.execute(text("COMMIT"))
                    await connection.execute(text("VACUUM (ANALYZE) sessions"))
        finally:
            await engine.dispose()
        return time.perf_counter() - started

    return asyncio.run(run())


async def explain_sweep(url: str, at: datetime) -> list[str]:
    """EXPLAIN ANALYZE of the worker's own expiry statement, with its batch size."""
    import asyncpg

    from s2cvpn.service.provisioning import SWEEP_BATCH
    from s2cvpn.storage.session_store import EXPIRED

    connection = await asyncpg.connect(url, timeout=10)
    try:
        rows = await connection.fetch("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + EXPIRED.postgres, at, SWEEP_BATCH)
    finally:
        await connection.close()
    return [row[0] for row in rows]


# ---- one backend --------------------------------------------------------------------------
def run_backend(backend: str, args: argparse.Namespace, folder: Path) -> list[tuple[str, dict[str, Any]]]:
    dbname = None
    if backend == "sqlite":
        database_url = f"sqlite:///{folder / 'bench.db'}"
    else:
        dbname = f"s2cvpn_bench_{uuid.uuid4().hex[:8]}"
        asyncio.run(_pg(PG_ADMIN, f'CREATE DATABASE "{dbname}"'))
        database_url = PG_ADMIN.rsplit("/", 1)[0] + "/" + dbname
    port, hello_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    # the cloned sessions exist only in the database: the model network never applied them,
    # so the worker's periodic reconciliation would re-apply every clone and its measurement
    # pass probe each one, work a network that carries them would not cause; both wait an hour
    env = {**os.environ, "S2CVPN_DATABASE_URL": database_url, "S2CVPN_PUBLIC_URL": base, "S2CVPN_RETENTION_SECONDS": "2",
           "S2CVPN_RECONCILE_INTERVAL_SECONDS": "3600", "S2CVPN_MEASURE_INTERVAL_SECONDS": "3600"}
    if args.sink:  # the sink listens on this machine
        env["S2CVPN_SINK_ALLOW_PRIVATE"] = "true"
    server = start([sys.executable, "-m", "s2cvpn", "serve", "--port", str(port), "--log-level", "warning", "--loop", args.loop], env,
                   f"{base}/health/live", folder / f"serve-{backend}.log")
    hello = start([sys.executable, "-c", HELLO_APP, str(hello_port), args.loop], env, f"http://127.0.0.1:{hello_port}/hello",
                  folder / f"hello-{backend}.log")
    sink_url, sink = None, None
    if args.sink:
        sink_port = free_port()
        sink_url = f"http://127.0.0.1:{sink_port}/events"
        sink = start([sys.executable, "-c", SINK_APP, str(sink_port)], env, sink_url, folder / f"sink-{backend}.log")
    rows: list[tuple[str, dict[str, Any]]] = []
    try:
        client_id, secret = register_client(database_url, "bench")
        token = httpx.post(f"{base}/oauth2/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)).json()["access_token"]
        api = httpx.Client(base_url=base + PREFIX, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        first = api.post("/sessions", json=SESSION)
        assert first.status_code == 201, first.text
        sid = first.json()["sessionId"]
        clone_sessions(database_url, sid, args.sessions - 1, client_id=client_id)
        assert api.get("/sessions").json()["pagination"]["totalCount"] == args.sessions
        api_url = base + PREFIX
        get_any = GET_ANY_LUA % (", ".join(lua_string(i) for i in session_ids(database_url, client_id)), PREFIX)
        load = {"seconds": args.seconds, "connections": args.connections}
        body = json.dumps({**SESSION, "applicationServers": [{"ipv4Address": "%s"}], **({"sink": sink_url} if sink_url else {})})
        routes = {
            "getSession": (api_url, get_any),
            "listSessions": (f"{api_url}/sessions?perPage=20", ""),
            "create+delete": (api_url, CREATE_DELETE_LUA % (lua_string(body), PREFIX, PREFIX)),
        }
        routes = {name: route for name, route in routes.items() if name in args.routes}
        # hello runs before each route and after the last: this machine's speed drifts within
        # a run, so each route is compared with the mean of the two hello runs around it
        def run_hello() -> dict[str, float]:
            return wrk(f"http://127.0.0.1:{hello_port}/hello", "", token=None, server=hello.pid, **load)

        hellos = [run_hello()]
        measured: dict[str, dict[str, Any]] = {}
        for name, (url, script) in routes.items():
            sink_cpu = cpu_seconds(sink.pid) if sink is not None else 0.0
            app_before = inside_the_app(base)
            figures = measured[name] = wrk(url, script, token=token, server=server.pid, **load)
            figures["inside"] = inside_during(app_before, inside_the_app(base))
            if name == "create+delete":
                # the provisioning and teardown that the pairs queued count too: the rate is
                # the requests over the run plus the time the worker took to finish the backlog
                cpu = cpu_seconds(server.pid)
                figures["accepted_rps"], figures["drain_s"] = figures["rps"], drain_seconds(database_url)
                figures["rps"] = figures["requests"] / (figures["seconds"] + figures["drain_s"])
                figures["cpu_s"] += cpu_seconds(server.pid) - cpu
                if sink_url:
                    figures["events_received"] = int(httpx.get(sink_url).text)
                    figures["sink_cpu_s"] = cpu_seconds(sink.pid) - sink_cpu  # the machine's CPU a real sink would not take
                    figures["events_drain_s"] = drain_seconds(database_url, pending=pending_events)
                    figures["events_all"] = int(httpx.get(sink_url).text)
            hellos.append(run_hello())
            figures["hello_rps"] = (hellos[-2]["rps"] + hellos[-1]["rps"]) / 2
        mean_hello = {key: sum(run[key] for run in hellos) / len(hellos) for key in ("rps", "p50_ms", "p99_ms", "cpu_s", "requests", "errors")}
        mean_hello["hello_rps"] = mean_hello["rps"]
        rates = sorted(run["rps"] for run in hellos)
        rows.append((f"{backend} hello (mean of {len(hellos)} runs, {rates[0]:,.0f}-{rates[-1]:,.0f} req/s)", mean_hello))
        rows += [(f"{backend} {name} ({args.sessions} sessions)", figures) for name, figures in measured.items()]
        if args.million and backend == "postgres":
            took = clone_sessions(database_url, sid, 1_000_000, client_id=None)
            print(f"cloned 1,000,000 sessions in {took:.0f}s")
            page = f"{api_url}/sessions?perPage=20"
            for name, url, script in (("getSession", api_url, get_any), ("listSessions", page, ""), ("getSession again", api_url, get_any)):
                figures = wrk(url, script, token=token, server=server.pid, **load)
                figures["hello_rps"] = mean_hello["rps"]
                rows.append((f"{backend} {name} (+1,000,000 sessions)", figures))
            now = datetime.now(UTC)
            for label, at in (("nothing due", now), ("everything due", now + timedelta(days=36500))):
                plan = asyncio.run(explain_sweep(database_url, at))
                print(f"\nexpiry sweep, {label}:\n" + textwrap.indent("\n".join(plan), "  "))
        api.close()
    finally:
        stop(server)
        stop(hello)
        if sink is not None:
            stop(sink)
        if dbname:
            asyncio.run(_pg(PG_ADMIN, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
    return rows


def lua_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio", help="event loop of both servers")
    parser.add_argument("--million", action="store_true", help="also measure with 1,000,000 more sessions (PostgreSQL)")
    parser.add_argument("--sink", action="store_true", help="create+delete's sessions have a sink: count the events it receives")
    parser.add_argument("--routes", type=lambda text: text.split(","), default=["getSession", "listSessions", "create+delete"],
                        help="the routes to measure (comma-separated; a profile of one route, say)")
    args = parser.parse_args()
    rows: list[tuple[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="s2cvpn-bench-") as folder:
        for backend in args.backends.split(","):
            rows += run_backend(backend, args, Path(folder))
    print(f"\nwrk -t2 -c{args.connections} -d{args.seconds:g}s, one uvicorn process each ({args.loop} loop), {os.cpu_count()} CPUs shared with wrk\n")
    print("| run | req/s | vs hello | p50 ms | p99 ms | server CPU us/req | errors |\n|---|---|---|---|---|---|---|")
    for name, figures in rows:
        ratio = figures["rps"] / figures["hello_rps"]
        print(f"| {name} | {figures['rps']:,.0f} | {ratio:.0%} | {figures['p50_ms']:.1f} | {figures['p99_ms']:.1f} | {figures['cpu_s'] / figures['requests'] * 1e6:.0f} | {figures['errors']:.0f} |")
    for name, figures in rows:
        if figures.get("inside"):
            print(f"{name}, inside the app: {figures['inside']}")
        if "drain_s" in figures:
            print(f"{name}: {figures['accepted_rps']:,.0f} req/s accepted during the run; the worker finished the queued "
                  f"provisioning and teardown {figures['drain_s']:.1f}s after it (the table counts that time)")
        if "events_received" in figures:
            print(f"{name}: the sink received {figures['events_received']:,} events by then "
                  f"({figures['events_received'] / (figures['seconds'] + figures['drain_s']):,.0f}/s), {figures['events_all']:,} in all; "
                  f"the worker delivered the rest {figures['events_drain_s']:.1f}s after; the sink, on this machine, "
                  f"took {figures['sink_cpu_s']:.1f} CPU-seconds of the run's {figures['seconds'] + figures['drain_s']:.1f} s")


if __name__ == "__main__":
    main()
