"""The reservation invariant on the real databases: a counter never exceeds capacity and
always equals the sum of what live sessions hold, whatever the sequence of operations,
and concurrent reservations on one resource never overbook. What each session holds is
kept here, as the service keeps it on the session's row: changed only when the
transaction that moved the counters commits."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from s2cvpn.storage import reservations
from s2cvpn.storage.db import create_engine, session_factory
from s2cvpn.storage.driver import open_database
from s2cvpn.storage.tables import ResourceLoadRow

CAPACITY = {"link-a": 1000, "link-b": 400, "port:x": 100}
SESSIONS = [f"s{n}" for n in range(6)]

demand = st.dictionaries(st.sampled_from(sorted(CAPACITY)), st.integers(min_value=1, max_value=500), min_size=1, max_size=3)
operation = st.one_of(
    st.tuples(st.just("reserve"), st.sampled_from(SESSIONS), demand),
    st.tuples(st.just("release"), st.sampled_from(SESSIONS), st.just({})),
)


async def _check_invariant(db, holding: dict[str, dict[str, int]]) -> None:  # type: ignore[no-untyped-def]
    counters = dict((await db.execute(select(ResourceLoadRow.resource_id, ResourceLoadRow.reserved_mbps))).all())
    for resource_id, capacity in CAPACITY.items():
        assert 0 <= counters[resource_id] <= capacity
        assert counters[resource_id] == sum(held.get(resource_id, 0) for held in holding.values())


async def _reset(make) -> None:  # type: ignore[no-untyped-def]
    """Empty counters for the three test resources, nothing reserved."""
    async with make() as db, db.begin():
        await db.execute(delete(ResourceLoadRow))
        await reservations.ensure_resources(db, CAPACITY)


async def _run(url: str, operations: list[tuple[str, str, dict[str, int]]]) -> None:
    engine = create_engine(url)
    make = session_factory(engine)
    database = open_database(url)
    holding: dict[str, dict[str, int]] = {}
    try:
        await _reset(make)
        for kind, session_id, wanted in operations:
            held = holding.get(session_id, {})
            try:
                async with database.transaction() as tx:
                    if kind == "reserve":
                        await reservations.reserve(tx, held, wanted, CAPACITY.__getitem__)
                    else:
                        await reservations.release(tx, held)
                holding[session_id] = wanted if kind == "reserve" else {}
            except reservations.CapacityRace:
                pass  # refused whole: the rollback leaves the previous state
            async with make() as db:
                await _check_invariant(db, holding)
    finally:
        await database.close()
        await engine.dispose()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=st.lists(operation, min_size=1, max_size=15))
def test_random_sequences_keep_the_invariant(migrated_url: str, operations: list[tuple[str, str, dict[str, int]]]) -> None:
    asyncio.run(_run(migrated_url, operations))


def test_refused_growth_changes_nothing(migrated_url: str) -> None:
    async def scenario() -> None:
        engine = create_engine(migrated_url)
        make = session_factory(engine)
        database = open_database(migrated_url)
        try:
            await _reset(make)
            held = {"port:x": 60, "link-a": 60}
            async with database.transaction() as tx:
                await reservations.reserve(tx, {}, held, CAPACITY.__getitem__)
            with pytest.raises(reservations.CapacityRace):
                async with database.transaction() as tx:
                    await reservations.reserve(tx, held, {"port:x": 160, "link-a": 100}, CAPACITY.__getitem__)
            async with make() as db:
                await _check_invariant(db, {"a": held})
        finally:
            await database.close()
            await engine.dispose()

    asyncio.run(scenario())


def test_concurrent_reservations_never_overbook(migrated_url: str) -> None:
    """30 transactions race for a 100 Mbps port, 10 Mbps each: exactly 10 win."""

    async def scenario() -> int:
        engine = create_engine(migrated_url)
        make = session_factory(engine)
        database = open_database(migrated_url)
        try:
            await _reset(make)

            async def one(n: int) -> bool:
                try:
                    async with database.transaction() as tx:
                        await reservations.reserve(tx, {}, {"port:x": 10}, CAPACITY.__getitem__)
                        await asyncio.sleep(0.01)  # hold the transaction open to force overlap
                    return True
                except reservations.CapacityRace:
                    return False

            results = await asyncio.gather(*(one(n) for n in range(30)))
            async with make() as db:
                await _check_invariant(db, {f"c{n}": {"port:x": 10} for n, won in enumerate(results) if won})
            return sum(results)
        finally:
            await database.close()
            await engine.dispose()

    assert asyncio.run(scenario()) == 10
