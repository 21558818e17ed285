"""What one create+delete pair costs the service, in-process and the same on every run.

    .venv/bin/python bench/pair_cost.py [--pairs 2000]
    .venv/bin/python bench/pair_cost.py --instructions     # under valgrind, about 3 minutes a row

On a fresh SQLite database the application is started without its embedded worker and
called as an ASGI app, one request at a time, and a worker is run by hand between the
requests. So every run does the same work, in the same order:

- a *built* pair: create, the worker builds the session, delete, the worker tears it down;
- an *unbuilt* pair: create, delete (the provisioning is withdrawn before any worker began
  it), then the worker's look for jobs, which finds none.

Printed: the CPU microseconds of each step and of a pair, and a pair's ratio to the
reference, one call of a bare ``FastAPI()`` hello route in the same way
(``bench/request_path.py``). ``bench/load.py``'s create+delete is between the two kinds:
there a third to a half of the pairs are built.

CPU figures move with the machine (20-30% from one hour to the next here). With
``--instructions`` the script runs itself under valgrind (callgrind, no cache simulation)
and prints instructions instead, which move by less than 0.5% between runs: the count for
``--high`` pairs less the count for ``--low``, divided by the difference, with the garbage
collector off during the pairs (left on, its collections fall at different points and move
the figure by 4%). Compare changes by these.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.load import SESSION  # noqa: E402
from bench.request_path import bare_hello, bench_client, call, request_scope  # noqa: E402
from s2cvpn.app import create_app  # noqa: E402
from s2cvpn.config import Settings  # noqa: E402
from s2cvpn.jobs.worker import Worker  # noqa: E402
from tests.support.servers import PREFIX  # noqa: E402

KINDS = ("built", "unbuilt")
STEPS = ("create", "build", "delete", "teardown")
WARM_PAIRS = 20


def _body(n: int) -> bytes:
    """A create of its own application server, so that no two sessions are duplicates."""
    return json.dumps({**SESSION, "applicationServers": [{"ipv4Address": f"10.{100 + n // 65536}.{n // 256 % 256}.{n % 256}/32"}]}).encode()


async def run_pairs(kind: str, pairs: int) -> dict[str, float]:
    """CPU seconds of each step over ``pairs`` pairs of ``kind``, after a warm-up."""
    with tempfile.TemporaryDirectory(prefix="s2cvpn-pairs-") as folder:
        return await _pairs_on(f"sqlite:///{folder}/bench.db", kind, pairs)


async def _pairs_on(database_url: str, kind: str, pairs: int) -> dict[str, float]:
    settings = Settings(database_url=database_url, reconcile_interval_seconds=3600, measure_interval_seconds=3600)
    app = create_app(settings, embed_worker=False)
    async with app.router.lifespan_context(app):
        worker = Worker(app.state.ctx)
        _client_id, bearer = await bench_client(app, database_url)
        spent: Counter[str] = Counter()

        async def pair(n: int) -> None:
            began = time.process_time()
            status, answer = await call(app, request_scope("POST", f"{PREFIX}/sessions", bearer), _body(n))
            if status != 201:
                raise RuntimeError(f"create answered {status}: {answer[:200]!r}")
            session_id = json.loads(answer)["sessionId"]
            began = _add(spent, "create", began)
            if kind == "built":
                await worker.run_due_jobs()
            began = _add(spent, "build", began)
            status, answer = await call(app, request_scope("DELETE", f"{PREFIX}/sessions/{session_id}", bearer))
            if status != 202:
                raise RuntimeError(f"delete answered {status}: {answer[:200]!r}")
            began = _add(spent, "delete", began)
            await worker.run_due_jobs()
            _add(spent, "teardown", began)

        for n in range(WARM_PAIRS):
            await pair(pairs + n)
        spent.clear()
        gc.collect()
        gc.disable()
        try:
            for n in range(pairs):
                await pair(n)
        finally:
            gc.enable()
        return dict(spent)


def _add(spent: Counter[str], step: str, began: float) -> float:
    now = time.process_time()
    spent[step] += now - began
    return now


async def run_hello(calls: int) -> float:
    """CPU seconds of ``calls`` calls of the bare hello, after a warm-up."""
    app, scope = bare_hello(), request_scope("GET", "/hello", [])
    for _ in range(WARM_PAIRS * 10):
        await call(app, scope)
    gc.collect()
    gc.disable()
    began = time.process_time()
    try:
        for _ in range(calls):
            await call(app, scope)
    finally:
        gc.enable()
    return time.process_time() - began


def cpu_figures(pairs: int) -> None:
    hello = asyncio.run(run_hello(pairs * 4)) / (pairs * 4) * 1e6
    print(f"\nCPU microseconds, in-process, SQLite, {pairs} pairs of each kind; reference: a bare hello call, {hello:.0f} us\n")
    print("| pair | " + " | ".join(STEPS) + " | pair | vs hello |\n|---|" + "---|" * (len(STEPS) + 2))
    for kind in KINDS:
        spent = asyncio.run(run_pairs(kind, pairs))
        micros = {step: spent.get(step, 0.0) / pairs * 1e6 for step in STEPS}
        total = sum(micros.values())
        print(f"| {kind} | " + " | ".join(f"{micros[step]:.0f}" for step in STEPS) + f" | {total:.0f} | {total / hello:.1f}x |")


def _instructions(*arguments: str) -> int:
    """valgrind's count of the instructions this script runs with ``arguments``."""
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__, *arguments],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"},
    ).stderr
    found = re.search(r"Collected : (\d+)", out)
    if found is None:
        raise RuntimeError(f"valgrind printed no count:\n{out[-2000:]}")
    return int(found.group(1))


def instruction_figures(low: int, high: int) -> None:
    def per_unit(only: str, scale: int = 1) -> float:
        counts = [_instructions("--only", only, "--pairs", str(n * scale)) for n in (low, high)]
        return (counts[1] - counts[0]) / ((high - low) * scale)

    hello = per_unit("hello", scale=10)  # a hello call is a hundredth of a pair: ten times as many
    print(f"\nInstructions (valgrind), in-process, SQLite, {high} pairs less {low}; reference: a bare hello call, {hello:,.0f}\n")
    print("| pair | instructions | vs hello |\n|---|---|---|")
    for kind in KINDS:
        pair = per_unit(kind)
        print(f"| {kind} | {pair:,.0f} | {pair / hello:.1f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=2000, help="pairs of each kind (hello: four calls a pair)")
    parser.add_argument("--instructions", action="store_true", help="count instructions under valgrind instead of CPU time")
    parser.add_argument("--low", type=int, default=20, help="with --instructions: the smaller run's pairs")
    parser.add_argument("--high", type=int, default=220, help="with --instructions: the larger run's pairs")
    parser.add_argument("--only", choices=(*KINDS, "hello"), help=argparse.SUPPRESS)  # one run, for valgrind to count
    args = parser.parse_args()
    if args.only == "hello":
        asyncio.run(run_hello(args.pairs))
    elif args.only:
        asyncio.run(run_pairs(args.only, args.pairs))
    elif args.instructions:
        instruction_figures(args.low, args.high)
    else:
        cpu_figures(args.pairs)


if __name__ == "__main__":
    main()
