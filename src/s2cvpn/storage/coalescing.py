"""Calls that share statements (PostgreSQL): one statement is in flight at a time, and the
calls that arrive meanwhile go together in the next one.

A call there waits for a connection and a round trip anyway; under load, a dozen of them
then cost one round trip and one statement instead of a dozen. A call alone is sent at
once, one turn of the event loop later. Each call's statement is sent after the call
arrived, so a read sees what was committed before it, and a write comes after it. Used by
getSession (``session_reads``), by the load a create plans on (``reservations.LoadReader``),
by the acceptance of new sessions (``acceptance.Acceptances``) and by deletes
(``withdrawal.Withdrawals``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class CoalescedQueries(Generic[K, V]):
    """``run(key)`` through ``query(keys)``, which answers every key of a batch at once
    (a key it leaves out gets None)."""

    def __init__(self, query: Callable[[tuple[K, ...]], Awaitable[Mapping[K, V]]], *, name: str) -> None:
        self._query = query
        self._name = name
        self._next: dict[K, list[asyncio.Future[V | None]]] = {}  # calls waiting for the next query
        self._sending: asyncio.Task[None] | None = None  # the task sending the queries (done: none is)

    async def run(self, key: K) -> V | None:
        waiter: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        self._next.setdefault(key, []).append(waiter)
        if self._sending is None or self._sending.done():
            self._sending = asyncio.create_task(self._send_batches(), name=self._name)
            self._sending.add_done_callback(self._sender_stopped)
        return await waiter

    async def _send_batches(self) -> None:
        """One query at a time, each for every call that arrived while the last one ran."""
        batch: dict[K, list[asyncio.Future[V | None]]] = {}
        try:
            while self._next:
                batch, self._next = self._next, {}
                try:
                    answers = await self._query(tuple(batch))
                except Exception as exc:  # noqa: BLE001 - each call fails as it would alone (503 for an outage)
                    _settle(batch, error=exc)
                    continue
                for key, waiters in batch.items():
                    answer = answers.get(key)
                    for waiter in waiters:
                        if not waiter.done():  # a request cancelled meanwhile no longer waits
                            waiter.set_result(answer)
        except BaseException as exc:  # cancelled (shutdown): the calls of its query are too
            _settle(batch, error=exc)
            raise

    def _sender_stopped(self, sender: asyncio.Task[None]) -> None:
        """A sender cancelled or failed, even before it began, leaves no call waiting for it
        (one that ended normally left none: it stops only when no call waits)."""
        if self._sending is not sender:
            return
        error = asyncio.CancelledError() if sender.cancelled() else sender.exception()
        if error is not None:
            stranded, self._next = self._next, {}
            _settle(stranded, error=error)


def _settle(batch: Mapping[K, list[asyncio.Future[V | None]]], *, error: BaseException) -> None:
    """Fail every call of ``batch`` still waiting with ``error`` (cancel it, if cancelled)."""
    for waiters in batch.values():
        for waiter in waiters:
            if waiter.done():
                continue
            if isinstance(error, Exception):
                waiter.set_exception(error)
            else:
                waiter.cancel()


async def together_or_one_by_one(
    batch: Sequence[K],
    write: Callable[[Sequence[K]], Awaitable[dict[K, V]]],
    *,
    undone: tuple[type[Exception], ...],
    outcome_of: Callable[[Exception], V],
) -> dict[K, V]:
    """``write(batch)``: the writes of a batch in one statement. When the database undid it
    (one of ``undone``: a guard, a unique key, a deadlock), one of them alone would have been
    undone too: each is then written in a statement of its own, and one undone alone gets
    ``outcome_of(error)``, the outcome it would have had without the others."""
    if len(batch) > 1:
        try:
            return await write(batch)
        except undone:
            pass
    outcomes: dict[K, V] = {}
    for key in batch:
        try:
            outcomes.update(await write((key,)))
        except undone as error:
            outcomes[key] = outcome_of(error)
    return outcomes
