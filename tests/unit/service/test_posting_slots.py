"""The posting slots a worker's delivery rounds share (``notifications.PostingSlots``)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from prometheus_client import REGISTRY

from s2cvpn.config import Settings
from s2cvpn.service.notifications import DELIVERY_CONCURRENCY, PostingSlots

CTX: Any = SimpleNamespace(settings=Settings(database_url="sqlite://", notify_backoff_seconds=1.0))
ALL = DELIVERY_CONCURRENCY


class Posts:
    """Posts that hold their slot until told to end, and the order in which they began."""

    def __init__(self, slots: PostingSlots) -> None:
        self.slots = slots
        self.began: list[str] = []
        self._ends: dict[str, asyncio.Event] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def post(self, name: str, sink: str) -> None:
        self._ends[name] = asyncio.Event()
        self._tasks[name] = asyncio.create_task(self._hold(name, sink))

    async def many(self, sink: str, count: int) -> None:
        """``count`` posts to ``sink``, named after it and numbered from 0, begun or waiting."""
        for n in range(count):
            self.post(f"{sink}{n}", sink)
        await _turns()

    async def _hold(self, name: str, sink: str) -> None:
        async with self.slots.slot(sink):
            self.began.append(name)
            await self._ends[name].wait()

    def let_end(self, name: str) -> None:
        """Tell a post to end, without waiting for it to."""
        self._ends[name].set()

    async def end(self, *names: str) -> None:
        for name in names:
            self.let_end(name)
        await asyncio.gather(*(self._tasks[name] for name in names))
        await _turns()

    def cancel(self, name: str) -> None:
        self._tasks[name].cancel()

    async def end_all(self) -> None:
        for end in self._ends.values():
            end.set()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)


async def _turns() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def _posts_in_flight() -> float | None:
    return REGISTRY.get_sample_value("s2cvpn_notification_posts_in_flight")


async def test_a_sink_alone_in_the_rounds_has_every_slot_and_the_next_post_waits_for_one() -> None:
    slots = PostingSlots()
    posts = Posts(slots)
    before = _posts_in_flight()
    assert before is not None
    with slots.round_of({"a"}):
        await posts.many("a", ALL + 1)
        assert len(posts.began) == ALL and slots.free() == 0
        assert _posts_in_flight() == before + ALL  # what an operator sees: every slot taken
        await posts.end("a3")
        assert posts.began[-1] == f"a{ALL}"
        await posts.end_all()
    assert slots.free() == ALL
    assert _posts_in_flight() == before


async def test_a_sink_whose_posts_hold_every_slot_gives_the_next_one_to_a_sink_of_a_later_round() -> None:
    """A round of a slow sink alone holds every slot; a round that begins beside it has
    events of another sink. Once two sinks have events, each has half of the slots: the
    first slot freed goes to the other sink, and the slow one gets no more until it holds
    less than half."""
    slots = PostingSlots()
    posts = Posts(slots)
    with slots.round_of({"slow"}):
        await posts.many("slow", ALL)
        with slots.round_of({"fast"}):
            posts.post("slow-more", "slow")
            posts.post("fast0", "fast")
            posts.post("fast1", "fast")
            await _turns()
            assert posts.began[ALL:] == []
            await posts.end("slow0")
            assert posts.began[ALL:] == ["fast0"]  # the other sink's, though the slow one's waited longer
            await posts.end("slow1")
            assert posts.began[ALL:] == ["fast0", "fast1"]
            await posts.end(*(f"slow{n}" for n in range(2, ALL // 2)))
            assert posts.began[ALL:] == ["fast0", "fast1"]  # the slow sink still holds its half
            await posts.end(f"slow{ALL // 2}")
            assert posts.began[ALL:] == ["fast0", "fast1", "slow-more"]
            await posts.end_all()
    assert slots.free() == ALL


async def test_a_sink_shares_the_slots_with_the_other_sinks_of_its_round_and_never_has_fewer_than_its_minimum() -> None:
    slots = PostingSlots()
    posts = Posts(slots)
    sinks = [f"s{n}" for n in range(8)]
    with slots.round_of(set(sinks)):
        for sink in sinks[:2]:
            await posts.many(sink, ALL)
        # eight sinks in the round: a share of two each, raised to the minimum of four
        assert sorted(posts.began) == sorted(f"{sink}{n}" for sink in sinks[:2] for n in range(4))
        await posts.end_all()


async def test_a_failing_sink_is_posted_to_one_at_a_time() -> None:
    slots = PostingSlots()
    slots.health.posted(CTX, "failing", "503", datetime(2026, 11, 30, tzinfo=UTC))
    posts = Posts(slots)
    with slots.round_of({"failing"}):
        await posts.many("failing", 3)
        assert posts.began == ["failing0"]
        await posts.end("failing0")
        assert posts.began == ["failing0", "failing1"]
        await posts.end_all()


async def test_a_cancelled_wait_takes_no_slot_and_a_cancelled_post_frees_its_own() -> None:
    slots = PostingSlots()
    posts = Posts(slots)
    with slots.round_of({"a"}):
        await posts.many("a", ALL + 2)
        posts.cancel(f"a{ALL}")  # waiting
        posts.cancel("a0")  # posting
        await _turns()
        assert posts.began[ALL:] == [f"a{ALL + 1}"]
        assert slots.free() == 0
        await posts.end_all()
    assert slots.free() == ALL


async def test_a_wait_handed_a_slot_as_it_is_cancelled_hands_it_on() -> None:
    slots = PostingSlots()
    posts = Posts(slots)
    with slots.round_of({"a"}):
        await posts.many("a", ALL + 2)
        posts.let_end("a0")
        await asyncio.sleep(0)  # a0 leaves its slot, handing it to a16 ...
        posts.cancel(f"a{ALL}")  # ... which is cancelled before it could take it
        await _turns()
        assert posts.began[ALL:] == [f"a{ALL + 1}"]
        assert slots.free() == 0
        await posts.end_all()
    assert slots.free() == ALL


async def test_nothing_is_kept_of_a_sink_once_its_posts_and_rounds_have_ended() -> None:
    """A worker meets many sinks over its life: none is remembered by its slots after."""
    slots = PostingSlots()
    posts = Posts(slots)
    sinks = [f"sink{n}" for n in range(40)]
    with slots.round_of(set(sinks)):
        for sink in sinks:
            await posts.many(sink, 2)  # 80 posts for 16 slots: most wait
        posts.cancel("sink391")  # a wait cancelled, too
        await posts.end_all()
    assert slots.free() == ALL
    assert not (slots._posting or slots._waiting or slots._in_rounds)
