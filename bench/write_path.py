"""The session write path in-process, without HTTP: CPU per create+delete pair.

    .venv/bin/python bench/write_path.py [--backends sqlite,postgres] [--pairs 500] [--concurrency 10]

For each backend, on a fresh database with the bundled demo network and the model driver:
``--pairs`` sessions are created and deleted through the service layer (``concurrency`` at
a time), and the embedded worker runs what they queue (provisioning, teardown) until the
job table is empty. Printed: CPU milliseconds of this process per pair (the database
server's CPU is not counted), pairs per second of wall time, and the reference: the CPU of
one bare transaction (``SELECT 1`` between BEGIN and COMMIT) on the same driver, so
"a pair costs N bare transactions" says how far the path is from its round-trip floor.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from s2cvpn.bootstrap import open_context  # noqa: E402
from s2cvpn.config import Settings  # noqa: E402
from s2cvpn.jobs.worker import Worker  # noqa: E402
from s2cvpn.service import sessions as session_service  # noqa: E402
from s2cvpn.storage.driver import Sql  # noqa: E402
from tests.support.payloads import session_request  # noqa: E402

PG_ADMIN = os.environ.get("S2CVPN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
BARE = Sql("SELECT 1")
PENDING = Sql("SELECT count(*) FROM jobs")
BARE_TRANSACTIONS = 2000


async def _pending_jobs(ctx) -> int:  # type: ignore[no-untyped-def]
    async with ctx.database.reading() as tx:
        return int(await tx.fetchval(PENDING))


async def _measure(database_url: str, pairs: int, concurrency: int) -> dict[str, float]:
    async with open_context(Settings(database_url=database_url, retention_seconds=2)) as ctx:
        worker = Worker(ctx)
        await worker.start()
        gate = asyncio.Semaphore(concurrency)

        async def pair(_n: int) -> None:
            async with gate:
                row, _ = await session_service.create_session(ctx, client_id="bench", body=session_request(ce="198.51.100.30"), idempotency_key=None)
                await session_service.delete_session(ctx, client_id="bench", session_id=row.session_id)

        async def drained() -> None:
            while await _pending_jobs(ctx):
                await asyncio.sleep(0.01)

        await asyncio.gather(*(pair(n) for n in range(20)))  # warm: statements prepared, planner precomputed
        await drained()
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(pair(n) for n in range(pairs)))
        await drained()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall

        bare = time.process_time()
        for _ in range(BARE_TRANSACTIONS):
            async with ctx.database.transaction() as tx:
                await tx.fetchval(BARE)
        bare = (time.process_time() - bare) / BARE_TRANSACTIONS
        await worker.stop()
    return {"cpu_ms": cpu / pairs * 1000, "pairs_per_s": pairs / wall, "bare_ms": bare * 1000}


async def _with_postgres(pairs: int, concurrency: int) -> dict[str, float]:
    import asyncpg

    name = f"s2cvpn_write_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        return await _measure(PG_ADMIN.rsplit("/", 1)[0] + "/" + name, pairs, concurrency)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--pairs", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    print("| backend | CPU ms / pair | pairs/s | bare transaction, CPU ms | pair / bare |\n|---|---|---|---|---|")
    for backend in args.backends.split(","):
        if backend == "sqlite":
            with tempfile.TemporaryDirectory(prefix="s2cvpn-write-") as folder:
                figures = asyncio.run(_measure(f"sqlite:///{folder}/bench.db", args.pairs, args.concurrency))
        else:
            figures = asyncio.run(_with_postgres(args.pairs, args.concurrency))
        ratio = figures["cpu_ms"] / figures["bare_ms"]
        print(f"| {backend} | {figures['cpu_ms']:.2f} | {figures['pairs_per_s']:.0f} | {figures['bare_ms']:.3f} | {ratio:.0f}x |")


if __name__ == "__main__":
    main()
