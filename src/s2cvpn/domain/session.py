"""Session states, end reasons and duration arithmetic: the rules the contract fixes."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

HOURS_PER_UNIT = {"minutes": 1 / 60, "hours": 1.0, "days": 24.0, "months": 730.0, "years": 8760.0}


class Status(enum.StrEnum):
    REQUESTED = "REQUESTED"
    AVAILABLE = "AVAILABLE"
    UNAVAILABLE = "UNAVAILABLE"


class StatusInfo(enum.StrEnum):
    DURATION_EXPIRED = "DURATION_EXPIRED"
    NETWORK_TERMINATED = "NETWORK_TERMINATED"
    DELETE_REQUESTED = "DELETE_REQUESTED"


LIVE_STATUSES = (Status.REQUESTED, Status.AVAILABLE)


def duration_hours(value: float, unit: str) -> float:
    return value * HOURS_PER_UNIT[unit]


def hours_delta(hours: float) -> timedelta:
    return timedelta(seconds=round(hours * 3600, 3))


def serviced_hours(started_at: datetime | None, until: datetime) -> float:
    """Hours since the session started, frozen at ``until`` (its end, or now)."""
    if started_at is None:
        return 0.0
    return round(max((until - started_at).total_seconds(), 0.0) / 3600, 6)
