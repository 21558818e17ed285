"""Database rows (SQLAlchemy 2 ``Mapped[]``). Only storage modules import this."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, Index, Integer, MetaData, String, Text, TypeDecorator, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from s2cvpn.domain.session import LIVE_STATUSES

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, always returns timezone-aware datetimes (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# the predicates of the sessions table's partial unique indexes, as SQL: the hot path's
# statements repeat them (an ON CONFLICT target names its partial index by its predicate)
LIVE_SESSION = "status IN (" + ", ".join(f"'{status.value}'" for status in LIVE_STATUSES) + ")"
HELD_SLOT = "released_at IS NULL"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class ClientRow(Base):
    __tablename__ = "clients"
    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    secret_hash: Mapped[str] = mapped_column(String(256))
    scopes: Mapped[str] = mapped_column(Text)  # space-separated
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SigningKeyRow(Base):
    __tablename__ = "signing_keys"
    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    private_pem: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    active_from: Mapped[datetime] = mapped_column(UTCDateTime)  # signs tokens from then on
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # stops signing
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # leaves JWKS


class SessionRow(Base):
    __tablename__ = "sessions"
    session_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))  # looked up by ix_sessions_client_id_created_at
    status: Mapped[str] = mapped_column(String(16))
    status_info: Mapped[str | None] = mapped_column(String(32), nullable=True)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)  # the accepted request, camelCase, no credential
    sla: Mapped[str] = mapped_column(String(3))
    bandwidth_mbps: Mapped[int] = mapped_column(Integer)
    max_latency_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    duration_hours: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    purge_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    plan: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # its "demands" are what it holds until released
    allocation: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    actual: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    sink: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    sink_credential: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    sink_gone: Mapped[bool] = mapped_column(Boolean, default=False)  # the sink answered 410
    dedup_key: Mapped[str] = mapped_column(String(64))
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # network torn down, resources back
    # the session's slot in the resource pools (every pool value derives from it): the
    # allocation's "slot", as a column so that ux_sessions_held_slot can keep it unique on
    # both databases; NULL only for sessions released before migration 0006
    slot: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = (
        Index("ix_sessions_status_expires_at", "status", "expires_at"),
        Index("ix_sessions_client_id_created_at", "client_id", "created_at", "session_id"),
        # the database refuses a live twin (same client, CE, PE and servers) even when two
        # creates race: the loser's insert waits for the winner's commit and fails
        Index("ux_sessions_live_dedup_key", "dedup_key", unique=True, sqlite_where=text(LIVE_SESSION), postgresql_where=text(LIVE_SESSION)),
        # a slot is held until the network is torn down
        Index("ux_sessions_held_slot", "slot", unique=True, sqlite_where=text(HELD_SLOT), postgresql_where=text(HELD_SLOT)),
    )


class IdempotencyRow(Base):
    __tablename__ = "idempotency_keys"
    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(256), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ResourceLoadRow(Base):
    """Mbps reserved per resource (link id or ``port:<attachment>``): the guarded counter."""

    __tablename__ = "resource_load"
    resource_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    reserved_mbps: Mapped[int] = mapped_column(BigInteger, default=0)


class JobRow(Base):
    """Durable work, written in the transaction that makes it necessary."""

    __tablename__ = "jobs"
    job_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    session_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    run_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    locked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # when a worker began its work (``session_store.begin_job``); a provisioning not begun may be withdrawn
    begun_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (Index("ix_jobs_run_at", "run_at"),)


class EventRow(Base):
    """A status event waiting for (or done with) delivery to a sink: the notification outbox."""

    __tablename__ = "events"
    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(36), index=True)
    sink: Mapped[str] = mapped_column(String(2048))
    access_token: Mapped[str | None] = mapped_column(Text, nullable=True)
    access_token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # what the event tells, rendered as a CloudEvent when it is posted; ``body``: the
    # CloudEvent itself, as events written before revision 0009 hold it
    status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    status_info: Mapped[str | None] = mapped_column(String(32), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    actual: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    body: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # None: done
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(64), nullable=True)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_events_next_attempt_at", "next_attempt_at"), Index("ix_events_created_at", "created_at"))


class RateCountRow(Base):
    """Requests one replica admitted for one client in one second (shared rate limiting)."""

    __tablename__ = "rate_counts"
    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # Unix second
    replica: Mapped[str] = mapped_column(String(96), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_rate_counts_window_start", "window_start"),)


class TokenFailureRow(Base):
    """Failed client authentications of one key, for the token endpoint's lockouts."""

    __tablename__ = "token_failures"
    key: Mapped[str] = mapped_column(String(160), primary_key=True)  # client:<id> or addr:<address>
    failures: Mapped[list[float]] = mapped_column(JSON)  # Unix times within the counting window
    lockouts: Mapped[int] = mapped_column(Integer)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
