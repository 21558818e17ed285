"""Per-client request rate limiting, shared by every replica of the API through PostgreSQL.

Design (cheap per request, one small database round trip per replica per sync interval):

- Counting: time is cut into one-second windows (Unix seconds). Each replica counts, in
  memory, the requests it admitted per client and window. The rate a client is held to is
  a sliding-window estimate, ``previous_window * (1 - elapsed) + current_window``, where
  both windows are summed over all replicas. ``check`` is a few dictionary operations and
  never touches the database.
- Sharing: every ``SYNC_SECONDS`` (0.1 s) while requests arrive, a background task writes
  this replica's absolute counts for the current and previous windows to ``rate_counts``
  (one row per client, window and replica; an idempotent upsert) and reads back, in the
  same transaction, the other replicas' sums and how many replicas served each client.
  Rows older than ten seconds are deleted now and then. SQLite deployments are a single
  process: there is nothing to share and the limiter is exact in memory.
- Headroom sharing: between two syncs a replica admits at most its share of the client's
  remaining allowance, ``(limit - estimate_at_last_sync) / replicas_serving_the_client``,
  so replicas that all receive a client's traffic cannot each spend the whole allowance
  before they hear of one another.

Accuracy: with every replica known, the admitted rate stays at or below the limit up to
rounding (a share below one request admits nothing, so a client may get a few requests
per second less than its limit). A replica that starts serving a client syncs at once, and
until that answer it admits at most the client's share among the replicas that are up
(``limit / replicas``); only when the replicas start together, knowing of none, can they
each admit up to the limit in that first round trip. When the balancer spreads a
client unevenly, a replica may refuse early for at most one interval, until the next sync
hands it the unused headroom. A database outage leaves each replica limiting alone with
the counts it last heard (failing open, never failing requests). Refusals answer 429
TOO_MANY_REQUESTS with ``Retry-After`` (seconds until the next window).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import async_sessionmaker

from s2cvpn import errors
from s2cvpn.storage.tables import RateCountRow

log = logging.getLogger(__name__)
SYNC_SECONDS = 0.1
IDLE_STOP_SECONDS = 5.0  # the sync task ends after this long without requests
KEEP_WINDOWS = 10


@dataclass
class _Remote:
    count: int = 0
    replicas: int = 0


class RateLimiter:
    """Token-free sliding-window limiter; ``sessions`` (PostgreSQL only) shares the counts."""

    def __init__(
        self,
        limit_per_second: float,
        *,
        sessions: async_sessionmaker | None = None,
        replica: str | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.limit = float(limit_per_second)
        self.sessions = sessions
        self.replica = replica or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._now = now
        self._local: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))  # window -> client -> admitted
        self._remote: dict[int, dict[str, _Remote]] = defaultdict(dict)  # window -> client -> others
        self._since_sync: dict[str, int] = defaultdict(int)  # admitted here since the last sync
        self._budget: dict[str, float] = {}  # headroom share granted at the last sync
        self._last_request = 0.0
        self._task: asyncio.Task[None] | None = None
        self._last_cleanup = 0.0
        self._sync_now = asyncio.Event()
        self._replicas_up = 1  # replicas that admitted anything lately, at the last sync

    # ---- per request -----------------------------------------------------------------
    def estimate(self, client_id: str, at: float | None = None) -> float:
        """Requests per second the client is making, over all replicas this one knows of."""
        t = self._now() if at is None else at
        window = int(t)
        elapsed = t - window

        def total(w: int) -> int:
            remote = self._remote.get(w, {}).get(client_id)
            return self._local.get(w, {}).get(client_id, 0) + (remote.count if remote else 0)

        return total(window - 1) * (1.0 - elapsed) + total(window)

    def check(self, client_id: str) -> None:
        """Count one request of ``client_id`` or raise ``TooManyRequests``."""
        if self.limit <= 0:
            return
        t = self._now()
        self._forget_old(int(t))
        self._last_request = t
        if self.sessions is not None:
            self._ensure_sync_task()
        allowed = self.estimate(client_id, t) + 1 <= self.limit
        budget = self._budget.get(client_id)
        if budget is None and self.sessions is not None:
            # a client this replica has not synced yet: sync now rather than at the next tick,
            # and until then assume every replica that is up serves it too
            self._sync_now.set()
            budget = self.limit / max(1, self._replicas_up)
        if allowed and budget is not None and self._since_sync[client_id] + 1 > budget:
            allowed = False  # this replica has spent its share until the next sync
        if not allowed:
            retry_after = max(1, math.ceil(int(t) + 1 - t))
            raise errors.TooManyRequests(
                f"more than {self.limit:g} requests per second from this client; slow down",
                headers={"Retry-After": str(retry_after)},
            )
        self._local[int(t)][client_id] += 1
        self._since_sync[client_id] += 1

    def _forget_old(self, window: int) -> None:
        for table in (self._local, self._remote):
            for old in [w for w in table if w < window - 1]:
                del table[old]

    # ---- sharing through PostgreSQL --------------------------------------------------
    def _ensure_sync_task(self) -> None:
        if self._task is None or self._task.done():
            with contextlib.suppress(RuntimeError):  # no running loop: nothing to share with
                self._task = asyncio.get_running_loop().create_task(self._sync_loop(), name="s2cvpn-ratelimit-sync")

    async def _sync_loop(self) -> None:
        while self._now() - self._last_request < IDLE_STOP_SECONDS:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._sync_now.wait(), SYNC_SECONDS)
            self._sync_now.clear()
            try:
                await self.sync()
            except Exception as exc:  # noqa: BLE001 - limit alone while the database is away
                log.debug("rate-limit sync failed: %s", type(exc).__name__)
                self._budget.clear()

    async def sync(self) -> None:
        """Publish this replica's counts and learn the others' (one transaction)."""
        assert self.sessions is not None
        t = self._now()
        window = int(t)
        rows = [
            {"client_id": client, "window_start": w, "replica": self.replica, "count": count}
            for w in (window - 1, window)
            for client, count in self._local.get(w, {}).items()
        ]
        clients = sorted({row["client_id"] for row in rows})
        self._since_sync.clear()
        if not clients:
            self._budget.clear()
            return
        statement = postgresql.insert(RateCountRow).values(rows)
        statement = statement.on_conflict_do_update(
            index_elements=["client_id", "window_start", "replica"], set_={"count": statement.excluded.count}
        )
        others = (
            select(RateCountRow.client_id, RateCountRow.window_start, func.sum(RateCountRow.count), func.count())
            .where(
                RateCountRow.window_start >= window - 1,
                RateCountRow.replica != self.replica,
                RateCountRow.client_id.in_(clients),
            )
            .group_by(RateCountRow.client_id, RateCountRow.window_start)
        )
        replicas_up = select(func.count(func.distinct(RateCountRow.replica))).where(
            RateCountRow.window_start >= window - 1, RateCountRow.replica != self.replica
        )
        async with self.sessions() as db, db.begin():
            await db.execute(statement)
            result = (await db.execute(others)).all()
            self._replicas_up = 1 + int(await db.scalar(replicas_up) or 0)
            if t - self._last_cleanup > KEEP_WINDOWS:
                self._last_cleanup = t
                await db.execute(delete(RateCountRow).where(RateCountRow.window_start < window - KEEP_WINDOWS))
        remote: dict[int, dict[str, _Remote]] = defaultdict(dict)
        for client, w, count, replicas in result:
            remote[int(w)][client] = _Remote(int(count), int(replicas))
        self._remote = remote
        now = self._now()
        budget: dict[str, float] = {}
        for client in clients:
            serving = 1 + max((remote[w][client].replicas for w in (window - 1, window) if client in remote[w]), default=0)
            budget[client] = max(self.limit - self.estimate(client, now), 0.0) / serving
        self._budget = budget

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


def for_database(limit_per_second: float, sessions: async_sessionmaker, dialect: str) -> RateLimiter:
    """Shared through the database on PostgreSQL; in memory on (single-process) SQLite."""
    return RateLimiter(limit_per_second, sessions=sessions if dialect == "postgresql" else None)
