"""The circuit breaker a worker keeps per sink (``notifications.SinkHealth``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import REGISTRY

from s2cvpn.config import Settings
from s2cvpn.service import notifications
from s2cvpn.service.notifications import SinkHealth

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
CTX: Any = SimpleNamespace(settings=Settings(database_url="sqlite://", notify_backoff_seconds=1.0))


def test_a_failed_post_opens_the_sink_until_its_backoff_and_a_delivered_one_closes_it() -> None:
    health = SinkHealth()
    health.posted(CTX, "s", "503", NOW)
    assert REGISTRY.get_sample_value("s2cvpn_sinks_failing") == 1
    first = health.failure("s")
    assert first is not None and (first.tries, first.retry_at, first.outcome) == (1, NOW + timedelta(seconds=1), "503")
    health.posted(CTX, "s", "TimeoutError", NOW)  # another post of the same round: one try
    assert health.failure("s") == first
    later = NOW + timedelta(seconds=1)
    health.posted(CTX, "s", "TimeoutError", later)  # its next try fails: the backoff doubles
    assert health.failure("s") == notifications.SinkFailure(2, later + timedelta(seconds=2), "TimeoutError")
    health.posted(CTX, "s", "204", later + timedelta(seconds=2))
    assert health.failure("s") is None
    assert REGISTRY.get_sample_value("s2cvpn_sinks_failing") == 0


@pytest.mark.parametrize("outcome", ["410", "refused", notifications.TOKEN_EXPIRED])
def test_an_outcome_about_the_event_says_nothing_of_the_sink(outcome: str) -> None:
    health = SinkHealth()
    health.posted(CTX, "s", outcome, NOW)
    assert health.failure("s") is None


def test_the_sinks_that_failed_least_lately_are_forgotten_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notifications, "SINKS_REMEMBERED", 2)
    health = SinkHealth()
    for sink in ("a", "b"):
        health.posted(CTX, sink, "503", NOW)
    health.posted(CTX, "a", "503", NOW + timedelta(seconds=1))  # "a" fails again: now "b" failed least lately
    health.posted(CTX, "c", "503", NOW + timedelta(seconds=1))
    assert [health.failure(sink) is not None for sink in ("a", "b", "c")] == [True, False, True]
