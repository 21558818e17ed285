"""FailureThrottle: lockouts after repeated failures, growing exponentially (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from s2cvpn.auth.clients import FailureThrottle

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_locks_after_limit_failures_within_window() -> None:
    throttle = FailureThrottle(window=timedelta(seconds=60), base_lockout=timedelta(seconds=30))
    for i in range(2):
        throttle.failure("client:a", 3, _at(i))
    assert throttle.retry_after(["client:a"], _at(2)) is None
    throttle.failure("client:a", 3, _at(2))
    assert throttle.retry_after(["client:a"], _at(2)) == 30
    assert throttle.retry_after(["client:a"], _at(31.5)) == 1
    assert throttle.retry_after(["client:a"], _at(32)) is None
    assert throttle.retry_after(["client:b"], _at(3)) is None  # other keys are unaffected


def test_failures_outside_the_window_do_not_count() -> None:
    throttle = FailureThrottle(window=timedelta(seconds=60))
    throttle.failure("k", 3, _at(0))
    throttle.failure("k", 3, _at(10))
    throttle.failure("k", 3, _at(100))  # the first two are out of the window by now
    assert throttle.retry_after(["k"], _at(100)) is None


def test_lockouts_double_and_are_capped() -> None:
    throttle = FailureThrottle(base_lockout=timedelta(seconds=10), max_lockout=timedelta(seconds=35))
    t = 0.0
    waits = []
    for _ in range(4):
        throttle.failure("k", 1, _at(t))
        wait = throttle.retry_after(["k"], _at(t))
        assert wait is not None
        waits.append(wait)
        t += wait + 1
    assert waits == [10, 20, 35, 35]


def test_success_resets_only_its_key_and_quiet_keys_are_forgotten() -> None:
    throttle = FailureThrottle(base_lockout=timedelta(seconds=10), forget_after=timedelta(seconds=100))
    throttle.failure("client:a", 1, _at(0))
    throttle.failure("addr:1", 1, _at(0))
    throttle.success("client:a")
    assert throttle.retry_after(["client:a"], _at(1)) is None
    assert throttle.retry_after(["client:a", "addr:1"], _at(1)) == 9  # the longest wait of the keys
    throttle.failure("addr:1", 5, _at(500))  # quiet for longer than forget_after: counting starts over
    assert throttle.retry_after(["addr:1"], _at(500)) is None


def test_memory_is_bounded() -> None:
    throttle = FailureThrottle(max_keys=10)
    for i in range(50):
        throttle.failure(f"addr:{i}", 100, _at(i))
    assert len(throttle._state) <= 10
    assert "addr:49" in throttle._state  # the most recent survive
