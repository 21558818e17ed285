"""Session rows as the storage layer writes them, for tests below the service layer."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from s2cvpn.storage.session_store import SessionRecord

CREATED = datetime(2026, 11, 28, 12, 0, 0, 5, tzinfo=UTC)  # microseconds, to see them kept


def stored_session(n: int, *, slot: int | None = None) -> SessionRecord:
    """Session ``n``: REQUESTED, its own id and duplicate key, pool slot ``slot`` (``n`` by
    default), a sink with a credential."""
    slot = n if slot is None else slot
    return SessionRecord(
        session_id=f"00000000-0000-4000-8000-{n:012d}",
        client_id="alice",
        status="REQUESTED",
        status_info=None,
        request={"sla": "A", "applicationServers": [{"ipv4Address": "10.0.0.1/32"}]},
        sla="A",
        bandwidth_mbps=10,
        max_latency_ms=None,
        duration_hours=1.5,
        created_at=CREATED,
        started_at=None,
        expires_at=None,
        ended_at=None,
        plan={"primary": {"links": ["a"]}},
        allocation={"slot": slot},
        actual=None,
        purge_at=None,
        sink="https://example.com/hook",
        sink_credential={"accessToken": "secret"},
        sink_gone=False,
        dedup_key=f"key-{n}",
        released_at=None,
        slot=slot,
    )


def status_of(session_id: str) -> SessionRecord:
    """What an event of session ``session_id`` tells, for events written alone: it is
    REQUESTED."""
    return replace(stored_session(0), session_id=session_id)
