"""getSession and listSessions straight on the database driver (``storage.driver``).

Why not through SQLAlchemy like the cold paths: these two reads are most of an API's
traffic, and on them SQLAlchemy's async layer (pool checkout, greenlet hand-offs, result
processing) cost about 1 ms of CPU per request, ten times the rest of the request (see
``bench/load.py``). The reads are autocommit; on SQLite they run on the event loop itself
(see ``SqliteDatabase``).

On PostgreSQL, getSession's reads are coalesced (``coalescing``): the reads that arrive
while a query is in flight go together in the next one (``session_id = ANY(..)``).
getSession went from 39% of the bare endpoint's rate to 61% (bench/HISTORY.md, seventh
round). On SQLite a read is a call on the event loop that takes microseconds, with
nothing to wait for and nothing to share.

On PostgreSQL a page is read as versions first: each row's id and ``xmin`` (the
transaction that wrote the row as it is), and only the rows whose view is not kept for
that version are fetched whole. A page of 20 came back as 20 whole rows (about 60 KB),
and decoding them was about a sixth of a listSessions request's CPU; rows change seldom,
and a page polled again is mostly rows already seen (bench/HISTORY.md, twentieth round).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from functools import lru_cache
from typing import Any

from s2cvpn.storage.coalescing import CoalescedQueries
from s2cvpn.storage.driver import POSTGRES, Database, Sql, Transaction, decode_row


@dataclass(frozen=True, slots=True, eq=False)
class SessionView:
    """The columns an API answer shows (no sink or credential, and no plan: only the L3NM
    document and the worker use it, through ``session_store``, and it is the largest JSON
    column; parsing it for every row of a page was a fifth of listSessions).

    Never changed once made, its JSON columns included: ``SessionReader`` hands the same
    view to every read of the same row. Equal and hashed by identity, so that what is
    derived from a view can be kept per view (``api.rendering``)."""

    session_id: str
    client_id: str
    status: str
    status_info: str | None
    request: dict[str, Any]
    sla: str
    bandwidth_mbps: int
    max_latency_ms: int | None
    duration_hours: float
    created_at: datetime
    started_at: datetime | None
    expires_at: datetime | None
    ended_at: datetime | None
    allocation: dict[str, Any] | None
    actual: dict[str, Any] | None


VIEW_FIELDS = tuple(field.name for field in fields(SessionView))
_COLUMNS = ", ".join(VIEW_FIELDS)
_JSON = [VIEW_FIELDS.index(name) for name in ("request", "allocation", "actual")]
_TIMES = [VIEW_FIELDS.index(name) for name in ("created_at", "started_at", "expires_at", "ended_at")]
ONE = Sql(f"SELECT {_COLUMNS} FROM sessions WHERE session_id = :session")
SOME = Sql(f"SELECT {_COLUMNS} FROM sessions WHERE session_id = ANY(:sessions)")  # PostgreSQL only
_COUNT = "SELECT count(*) FROM sessions WHERE client_id = :client"
COUNT = Sql(_COUNT)
# the count rides along with the page (an uncorrelated subquery, run once): one round trip
# instead of two; only a page past the end, which has no row to carry it, counts apart
_PAGE_ORDER = "FROM sessions WHERE client_id = :client ORDER BY created_at, session_id LIMIT :limit OFFSET :offset"
PAGE = Sql(f"SELECT {_COLUMNS}, ({_COUNT}) {_PAGE_ORDER}")
# PostgreSQL only: a page as the versions of its rows, then the rows not kept, with theirs
PAGE_VERSIONS = Sql(f"SELECT session_id, xmin::text, ({_COUNT}) {_PAGE_ORDER}")
SOME_VERSIONED = Sql(f"SELECT {_COLUMNS}, xmin::text FROM sessions WHERE session_id = ANY(:sessions)")


# Views kept, one per distinct row as read: the rows of the pages and sessions read most
# lately. With its key (the row as read) and its encoded body (``api.rendering``), a kept
# view of the bench's session is about 5.7 KB: 12 MB in all.
VIEWS_KEPT = 2048


@lru_cache(maxsize=VIEWS_KEPT)
def _decode(raw: tuple[Any, ...]) -> SessionView:
    """The view of a row, keyed by every column as read: a row that changed in any column
    is a new key, and an unchanged one is not decoded again. Hashing and comparing a row
    costs about a tenth of parsing its JSON and times."""
    return SessionView(*decode_row(raw, _JSON, _TIMES))


class SessionReader:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._batches = CoalescedQueries(self._read_some, name="s2cvpn-session-reads") if database.dialect == POSTGRES else None
        self._versions: OrderedDict[tuple[str, str], SessionView] = OrderedDict()  # (id, xmin): the view, latest used last

    async def one(self, session_id: str) -> SessionView | None:
        """The session, whoever owns it (the caller checks ownership)."""
        if self._batches is None:
            async with self._database.reading() as tx:
                row = await tx.fetchrow(ONE, session=session_id)
        else:
            row = await self._batches.run(session_id)
        return None if row is None else _decode(tuple(row))

    async def _read_some(self, session_ids: tuple[str, ...]) -> dict[str, Sequence[Any]]:
        async with self._database.reading() as tx:
            return {row[0]: row for row in await tx.fetch(SOME, sessions=session_ids)}

    async def page(self, client_id: str, offset: int, limit: int) -> tuple[list[SessionView], int]:
        """One page of the client's sessions, oldest first, and how many it has in all."""
        by_versions = self._database.dialect == POSTGRES
        async with self._database.reading() as tx:
            rows = await tx.fetch(PAGE_VERSIONS if by_versions else PAGE, client=client_id, limit=limit, offset=offset)
            if not rows:
                return [], int(await tx.fetchval(COUNT, client=client_id))
            views = await self._views_by_version(tx, rows) if by_versions else [_decode(row[:-1]) for row in rows]
        return views, int(rows[0][-1])

    async def _views_by_version(self, tx: Transaction, versions: Sequence[Sequence[Any]]) -> list[SessionView]:
        """PostgreSQL: the views of a page's ``(id, xmin, total)`` rows, kept or fetched
        whole. A row that changed in between is shown as the second read found it; one
        deleted in between (purged) is left out."""
        views: dict[str, SessionView | None] = {}
        for session_id, version, _total in versions:
            views[session_id] = view = self._versions.get((session_id, version))
            if view is not None:
                self._versions.move_to_end((session_id, version))
        missing = tuple(session_id for session_id, view in views.items() if view is None)
        if missing:
            for row in await tx.fetch(SOME_VERSIONED, sessions=missing):
                views[row[0]] = self._versions[(row[0], row[-1])] = _decode(tuple(row[:-1]))
            while len(self._versions) > VIEWS_KEPT:
                self._versions.popitem(last=False)
        return [view for view in views.values() if view is not None]
