"""The job queue's claim on both databases: due jobs only, oldest first, an attempt
counted, a leased job left alone until its lease runs out, a finished job gone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


from s2cvpn.storage import jobs
from s2cvpn.storage.driver import open_database

NOW = datetime(2026, 11, 28, 12, 0, 0, 250000, tzinfo=UTC)
LEASE = timedelta(seconds=30)


async def test_claims_due_jobs_oldest_first_and_respects_leases(migrated_url: str) -> None:
    database = open_database(migrated_url)
    try:
        async with database.transaction() as tx:
            await jobs.enqueue(tx, kind="teardown", session_id="b", now=NOW - timedelta(seconds=1), payload={"delete": True})
            await jobs.enqueue(tx, kind="provision", session_id="a", now=NOW - timedelta(seconds=2))
            await jobs.enqueue(tx, kind="provision", session_id="later", now=NOW + timedelta(seconds=5))

        async with database.transaction() as tx:
            first = await jobs.claim(tx, worker_id="w1", now=NOW, lease=LEASE, limit=10)
        assert [(j.kind, j.session_id, j.attempts) for j in first] == [("provision", "a", 1), ("teardown", "b", 1)]
        assert first[1].payload == {"delete": True}

        async with database.transaction() as tx:  # leased to w1: nothing for w2
            assert await jobs.claim(tx, worker_id="w2", now=NOW + timedelta(seconds=1), lease=LEASE, limit=10) == []
            assert await jobs.finish(tx, first[0].job_id, "w1") is True
            assert await jobs.finish(tx, first[1].job_id, "w2") is False  # not w2's lease

        after_lease = NOW + LEASE + timedelta(seconds=1)
        async with database.transaction() as tx:  # w1 went silent: w2 takes its job over, and the one now due
            taken = await jobs.claim(tx, worker_id="w2", now=after_lease, lease=LEASE, limit=10)
        assert [(j.session_id, j.attempts) for j in taken] == [("b", 2), ("later", 1)]
    finally:
        await database.close()
