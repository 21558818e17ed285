"""The background worker: runs queued jobs, expires and purges sessions, delivers
notifications and reconciles the network. ``s2cvpn serve`` embeds one; ``s2cvpn worker``
runs it alone. Several workers may share one PostgreSQL database: jobs are leased,
sweeps lock rows with SKIP LOCKED, and every transition is guarded by its expected state.

Leases: a claimed batch's leases are renewed every third of ``job_lease_seconds``
(heartbeat) until each job is done, so no job is taken over while its worker lives,
however slow the network; a killed worker stops renewing and another takes its jobs once
the lease has run out. A batch runs jobs of different sessions concurrently and the jobs
of one session in order.

How many jobs run at once (``Worker.concurrency``): a driver that blocks is called in a
thread, so a few jobs at a time (``BLOCKING_DRIVER_JOBS``) keep the threads busy and more
would only queue for them. A driver that does not block costs the jobs only turns of the
event loop, and there a job waits its turn (and, on SQLite, its turn for the write lock)
alongside every API request in flight: the worker keeps pace with the API only with as
many jobs in hand as the API has requests (``JOBS_IN_FLIGHT``). With 8, 64 connections of
create+delete queued work faster than the embedded worker ran it; in 10 s the sessions
deleted but not yet torn down held every pool slot and creates failed (bench/HISTORY.md,
seventh round).

Graceful stop (SIGTERM): no new job is started; the job in hand finishes (within
``stop``'s timeout) and the rest of the claimed batch is released at once
(``release_lease``) for another worker. If the timeout forces a cancel, the interrupted
job is released too, its attempt counted (it began: a delete must tear its session down);
its handler is idempotent, so the next worker simply runs it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from datetime import timedelta
from typing import Any

import aiohttp
from prometheus_client import Counter

from s2cvpn.errors import DriverError
from s2cvpn.service import measurements, notifications, provisioning, sinks
from s2cvpn.service.context import ServiceContext
from s2cvpn.storage import jobs as job_store
from s2cvpn.storage.driver import background_context
from s2cvpn.storage.jobs import ClaimedJob

log = logging.getLogger(__name__)
MAX_JOB_BACKOFF_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0
PURGE_EVERY_SECONDS = 1.0  # retention is counted in minutes: no need to sweep after every batch
BLOCKING_DRIVER_JOBS = 8  # jobs at once when each driver call takes a thread
JOBS_IN_FLIGHT = 64  # jobs at once when driver calls do not block: as many as API requests in flight
# a delivery round still running after this (its sinks answer slowly) has the next one
# begin beside it, while a posting slot is free, up to ROUNDS_IN_FLIGHT rounds
ROUND_OVERLAP_SECONDS = 0.5
ROUNDS_IN_FLIGHT = 4
JOBS = Counter("s2cvpn_jobs", "Jobs run by this process, by outcome", ["kind", "result"])


class Worker:
    def __init__(self, ctx: ServiceContext, *, behind_requests: bool = False) -> None:
        """``behind_requests``: the worker shares its process with the API (``s2cvpn serve``),
        and its statements wait behind the requests' for a connection."""
        self.ctx = ctx
        self._behind_requests = behind_requests
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._http: aiohttp.ClientSession | None = None
        self._purged_at = float("-inf")  # monotonic seconds
        self._posting = notifications.PostingSlots()
        self._deliveries: set[asyncio.Task[int]] = set()  # delivery rounds in flight
        self.concurrency = BLOCKING_DRIVER_JOBS if ctx.driver.blocks else JOBS_IN_FLIGHT

    async def start(self) -> None:
        self._http = sinks.open_client(allow_private=self.ctx.settings.sink_allow_private)
        await self._reconcile_once()
        # the tasks' statements, and those of the tasks they start, are background work
        # (``ConnectionLender``); None: a copy of the current context, as by default
        context = background_context() if self._behind_requests else None
        self._tasks = [
            asyncio.create_task(self._loop(self._jobs_and_sweeps), name="s2cvpn-jobs", context=context),
            asyncio.create_task(self._loop(self._notifications), name="s2cvpn-notify", context=context),
            asyncio.create_task(self._loop(self._reconcile_periodically), name="s2cvpn-reconcile", context=context),
            asyncio.create_task(measurements.run_periodically(self.ctx, self._stopping), name="s2cvpn-measure", context=context),
        ]

    async def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Graceful: loops finish the job in hand, release the rest, then exit."""
        self._stopping.set()
        self.ctx.work_ready.set()
        deadline = time.monotonic() + timeout
        for tasks in (self._tasks, self._deliveries):  # the loops first: then no round begins any more
            if tasks:
                await self._finish(set(tasks), deadline - time.monotonic())
        if self._http is not None:
            await self._http.close()

    @staticmethod
    async def _finish(tasks: set[asyncio.Task[Any]], timeout: float) -> None:
        """Wait for ``tasks`` to end; cancel those still running after ``timeout``."""
        _done, late = await asyncio.wait(tasks, timeout=max(timeout, 0.0))
        for task in late:
            log.warning("worker task %s did not stop in time: cancelled", task.get_name())
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=5)

    async def _loop(self, step) -> None:  # type: ignore[no-untyped-def]
        while not self._stopping.is_set():
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception:  # a database outage must not kill the worker: log and go on
                log.exception("worker step %s failed", getattr(step, "__name__", step))
                await self._sleep(1.0)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=max(seconds, 0.0))

    async def _wait_for_work(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ctx.work_ready.wait(), timeout=max(seconds, 0.01))

    async def _jobs_and_sweeps(self) -> None:
        self.ctx.work_ready.clear()  # before looking, so work queued meanwhile wakes the wait below
        ran = await self.run_due_jobs()
        ran += await provisioning.expire_due(self.ctx)
        if time.monotonic() - self._purged_at >= PURGE_EVERY_SECONDS:
            await provisioning.purge_due(self.ctx)
            self._purged_at = time.monotonic()
        if ran:
            return
        poll = self.ctx.settings.worker_poll_seconds
        upcoming = await provisioning.next_expiry(self.ctx)
        if upcoming is not None:
            poll = min(poll, (upcoming - self.ctx.clock.now()).total_seconds())
        await self._wait_for_work(poll)

    async def run_due_jobs(self) -> int:
        """Claim a batch and run it: jobs of one session in order, sessions concurrently.
        The batch is twice what runs at once, so a job finishing has a next one in hand."""
        settings = self.ctx.settings
        limit = 2 * self.concurrency
        async with self.ctx.database.transaction() as tx:
            claimed = await job_store.claim(
                tx, worker_id=self.worker_id, now=self.ctx.clock.now(), lease=timedelta(seconds=settings.job_lease_seconds), limit=limit
            )
        if not claimed:
            return 0
        held = {job.job_id for job in claimed}  # leased to us and not yet done
        started: set[int] = set()
        lost: set[int] = set()
        heartbeat = asyncio.create_task(self._heartbeat(held, lost), name="s2cvpn-leases")
        groups: dict[str, list[ClaimedJob]] = {}
        for job in claimed:
            groups.setdefault(job.session_id or f"job:{job.job_id}", []).append(job)
        slots = asyncio.Semaphore(self.concurrency)

        async def run_group(jobs: list[ClaimedJob]) -> None:
            for job in jobs:
                async with slots:
                    if self._stopping.is_set():
                        return
                    if job.job_id not in lost:
                        started.add(job.job_id)
                        await self._run_one(job, lost)
                    else:
                        JOBS.labels(job.kind, "lease_lost").inc()
                    held.discard(job.job_id)

        try:
            await asyncio.gather(*(run_group(jobs) for jobs in groups.values()))
        except asyncio.CancelledError:  # stop() ran out of patience: give the unfinished jobs back
            await asyncio.shield(self._release([job for job in claimed if job.job_id in held], started))
            raise
        finally:
            heartbeat.cancel()
        unstarted = [job for job in claimed if job.job_id in held and job.job_id not in lost]
        if unstarted:  # stopping: another worker takes them at once
            await self._release(unstarted, started)
        return len(claimed)

    async def _release(self, jobs: list[ClaimedJob], started: set[int]) -> None:
        async with self.ctx.database.transaction() as tx:
            for job in jobs:
                await job_store.release_lease(tx, job.job_id, self.worker_id, started=job.job_id in started)
        for job in jobs:
            JOBS.labels(job.kind, "released").inc()

    async def _heartbeat(self, held: set[int], lost: set[int]) -> None:
        """Keep the leases of the batch while it runs; note jobs another worker took over."""
        lease = self.ctx.settings.job_lease_seconds
        while held:
            await asyncio.sleep(lease / 3)
            ids = set(held)
            try:
                async with self.ctx.database.transaction() as tx:
                    kept = await job_store.renew(tx, ids, self.worker_id, until=self.ctx.clock.now() + timedelta(seconds=lease))
            except Exception:  # noqa: BLE001 - a database blip: try again at the next beat
                log.warning("could not renew job leases", exc_info=True)
                continue
            for job_id in ids - kept:
                if job_id in held:
                    log.warning("job %s: lease lost to another worker", job_id)
                    lost.add(job_id)

    async def _run_one(self, job: ClaimedJob, lost: set[int]) -> None:
        held = provisioning.HeldJob(job, self.worker_id)
        try:
            await provisioning.run_job(self.ctx, held)
        except (DriverError, OSError) as exc:
            await self._failed(job, f"{type(exc).__name__}: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - an unexpected bug: keep the job, retry later
            log.exception("job %s (%s) crashed", job.job_id, job.kind)
            await self._failed(job, f"{type(exc).__name__}: {exc}")
            return
        if held.withdrawn:  # a delete took it before its work began: nothing to end
            JOBS.labels(job.kind, "withdrawn").inc()
            return
        if held.finished is None:  # one statement: no transaction needed on PostgreSQL
            async with self.ctx.database.autocommit() as tx:
                await held.done(tx)
        JOBS.labels(job.kind, "done" if held.finished and job.job_id not in lost else "lease_lost").inc()

    async def _failed(self, job: ClaimedJob, error: str) -> None:
        settings = self.ctx.settings
        if job.attempts >= settings.job_max_attempts:
            await provisioning.give_up(self.ctx, job, error)
            async with self.ctx.database.transaction() as tx:
                await job_store.finish(tx, job.job_id)
            JOBS.labels(job.kind, "gave_up").inc()
            return
        JOBS.labels(job.kind, "retry").inc()
        delay = min(settings.worker_poll_seconds * 2**job.attempts, MAX_JOB_BACKOFF_SECONDS)
        log.warning("job %s (%s) attempt %d failed, retrying in %.1fs: %s", job.job_id, job.kind, job.attempts, delay, error)
        async with self.ctx.database.transaction() as tx:
            await job_store.retry_later(
                tx, job.job_id, run_at=self.ctx.clock.now() + timedelta(seconds=delay), error=error, worker_id=self.worker_id
            )

    async def _notifications(self) -> None:
        """One delivery round after another. A round waits for its slowest post: one still
        running after ``ROUND_OVERLAP_SECONDS`` has the next begin beside it once a posting
        slot is free, so that the events of other sinks that come due meanwhile are not held
        up behind a slow one until the round ends (up to a post timeout, 5 s by default)."""
        assert self._http is not None
        delivery = asyncio.create_task(notifications.deliver_due(self.ctx, self._http, self._posting), name="s2cvpn-deliver")
        self._deliveries.add(delivery)
        delivery.add_done_callback(self._delivery_ended)
        await asyncio.wait({delivery}, timeout=ROUND_OVERLAP_SECONDS)
        while not self._stopping.is_set() and (len(self._deliveries) >= ROUNDS_IN_FLIGHT or (self._deliveries and not self._posting.free())):
            await asyncio.wait(self._deliveries, timeout=ROUND_OVERLAP_SECONDS, return_when=asyncio.FIRST_COMPLETED)
        if not delivery.done():
            return  # the next round begins at once, beside it
        if delivery.cancelled() or delivery.exception() is not None:
            await self._sleep(1.0)  # as after any failed step (``_delivery_ended`` logged it)
        elif not delivery.result():
            await self._sleep(min(self.ctx.settings.worker_poll_seconds, 0.25))

    def _delivery_ended(self, delivery: asyncio.Task[int]) -> None:
        self._deliveries.discard(delivery)
        if not delivery.cancelled() and (error := delivery.exception()) is not None:
            log.error("notification delivery failed", exc_info=error)

    async def _reconcile_once(self) -> None:
        try:
            counts = await provisioning.reconcile(self.ctx)
            if any(counts.values()):
                log.info("reconciled the network: %s", counts)
        except DriverError as exc:
            log.warning("reconciliation skipped, the network driver failed: %s", exc)

    async def _reconcile_periodically(self) -> None:
        await self._sleep(self.ctx.settings.reconcile_interval_seconds)
        if not self._stopping.is_set():
            await self._reconcile_once()
