"""The job queue's claim on both databases: due jobs only, oldest first, an attempt
counted, a leased job left alone until its lease runs out, a finished job gone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


from s2cvpn.storage import jobs
from s2cvpn.storage.driver import Sql, open_database

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


async def test_only_the_holder_renews_retries_or_releases_a_lease(migrated_url: str) -> None:
    """The heartbeat extends its own leases only; a failed job goes back with its error,
    due at ``run_at``; a released job is taken at once, its attempt uncounted if it never
    started. Another worker's calls change nothing."""
    database = open_database(migrated_url)
    try:
        async with database.transaction() as tx:
            for session_id in ("a", "b", "c"):
                await jobs.enqueue(tx, kind="provision", session_id=session_id, now=NOW)
            held = await jobs.claim(tx, worker_id="w1", now=NOW, lease=LEASE, limit=10)
        a, b, c = (job.job_id for job in held)
        later = NOW + LEASE * 2  # past the first lease: only a renewed one still holds
        async with database.transaction() as tx:
            assert await jobs.renew(tx, [a, b], "w1", until=later + LEASE) == {a, b}
            assert await jobs.renew(tx, [c], "w2", until=later + LEASE) == set()
            assert await jobs.renew(tx, [], "w1", until=later + LEASE) == set()
            await jobs.retry_later(tx, a, run_at=later + LEASE * 4, error="x" * 3000, worker_id="w2")  # not w2's: no change
            await jobs.retry_later(tx, b, run_at=later + timedelta(seconds=1), error="x" * 3000, worker_id="w1")
            await jobs.release_lease(tx, c, "w2", started=False)  # not w2's: no change
        async with database.transaction() as tx:
            # c's lease ran out (never renewed): taken over, a second attempt; a is still w1's;
            # b is not due yet
            assert [(j.job_id, j.attempts) for j in await jobs.claim(tx, worker_id="w2", now=later, lease=LEASE, limit=10)] == [(c, 2)]
            await jobs.release_lease(tx, c, "w2", started=False)  # never started: back, uncounted
            retaken = await jobs.claim(tx, worker_id="w3", now=later + timedelta(seconds=1), lease=LEASE, limit=10)
        assert sorted((j.job_id, j.attempts) for j in retaken) == [(b, 2), (c, 2)]
        async with database.reading() as tx:
            error = (await tx.fetchrow(Sql("SELECT last_error FROM jobs WHERE job_id = :job"), job=b))[0]
        assert error == "x" * 2000  # kept short
    finally:
        await database.close()
