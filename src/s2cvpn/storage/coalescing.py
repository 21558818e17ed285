"""Reads that share queries (PostgreSQL): one query is in flight at a time, and the reads
that arrive meanwhile go together in the next one.

A read there waits for a connection and a round trip anyway; under load, a dozen of them
then cost one round trip and one statement instead of a dozen. A read alone is sent at
once, one turn of the event loop later. Each read still sees what was committed before it
arrived: its query is sent after it. Used by getSession (``session_reads``) and by the
load a create plans on (``reservations.LoadReader``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class CoalescedReads(Generic[K, V]):
    """``read(key)`` through ``query(keys)``, which answers every key of a batch at once
    (a key it leaves out reads as None)."""

    def __init__(self, query: Callable[[tuple[K, ...]], Awaitable[Mapping[K, V]]], *, name: str) -> None:
        self._query = query
        self._name = name
        self._next: dict[K, list[asyncio.Future[V | None]]] = {}  # reads waiting for the next query
        self._reading: asyncio.Task[None] | None = None  # the task sending the queries (done: none is)

    async def read(self, key: K) -> V | None:
        waiter: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        self._next.setdefault(key, []).append(waiter)
        if self._reading is None or self._reading.done():
            self._reading = asyncio.create_task(self._read_batches(), name=self._name)
            self._reading.add_done_callback(self._reader_stopped)
        return await waiter

    async def _read_batches(self) -> None:
        """One query at a time, each for every read that arrived while the last one ran."""
        batch: dict[K, list[asyncio.Future[V | None]]] = {}
        try:
            while self._next:
                batch, self._next = self._next, {}
                try:
                    answers = await self._query(tuple(batch))
                except Exception as exc:  # noqa: BLE001 - each read fails as it would alone (503 for an outage)
                    _settle(batch, error=exc)
                    continue
                for key, waiters in batch.items():
                    answer = answers.get(key)
                    for waiter in waiters:
                        if not waiter.done():  # a request cancelled meanwhile no longer waits
                            waiter.set_result(answer)
        except BaseException as exc:  # cancelled (shutdown): the reads of its query are too
            _settle(batch, error=exc)
            raise

    def _reader_stopped(self, reader: asyncio.Task[None]) -> None:
        """A reader cancelled or failed, even before it began, leaves no read waiting for it
        (one that ended normally left none: it stops only when no read waits)."""
        if self._reading is not reader:
            return
        error = asyncio.CancelledError() if reader.cancelled() else reader.exception()
        if error is not None:
            stranded, self._next = self._next, {}
            _settle(stranded, error=error)


def _settle(batch: Mapping[K, list[asyncio.Future[V | None]]], *, error: BaseException) -> None:
    """Fail every read of ``batch`` still waiting with ``error`` (cancel it, if cancelled)."""
    for waiters in batch.values():
        for waiter in waiters:
            if waiter.done():
                continue
            if isinstance(error, Exception):
                waiter.set_exception(error)
            else:
                waiter.cancel()
