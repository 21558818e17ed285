"""Session rows as the API shows them (camelCase lives in the API layer only)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache, partial
from typing import Any

import orjson
from starlette.responses import Response

from s2cvpn.domain.session import Status, serviced_hours
from s2cvpn.service import specs
from s2cvpn.storage.session_reads import VIEWS_KEPT, SessionView

# times as RFC 3339 to the second, UTC written "Z" (``2026-11-28T22:40:00Z``)
_RFC3339_TIMES = orjson.OPT_UTC_Z | orjson.OPT_OMIT_MICROSECONDS


def json_response(content: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """JSON by orjson: several times faster than the stdlib, and it writes a ``datetime`` in
    RFC 3339 five times faster than ``isoformat`` can."""
    body = orjson.dumps(content, option=_RFC3339_TIMES)
    return Response(body, status_code=status_code, headers=headers, media_type="application/json")


def session_response(
    row: SessionView, now: datetime, *, read: bool = False, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """``read``: the row is a view that ``SessionReader`` handed out, whose encoding is kept."""
    return Response(encoded_session(row, now, read=read), status_code=status_code, headers=headers, media_type="application/json")


def session_page_response(rows: list[SessionView], now: datetime, pagination: dict[str, int], headers: dict[str, str]) -> Response:
    """A listSessions page of the views ``SessionReader`` handed out."""
    items = b",".join(encoded_session(row, now, read=True) for row in rows)
    body = b'{"items":[' + items + b'],"pagination":' + orjson.dumps(pagination) + b"}"
    return Response(body, headers=headers, media_type="application/json")


def encoded_session(row: SessionView, now: datetime, *, read: bool) -> bytes:
    """The session's JSON body. Only ``servicedDuration`` moves with the clock; the rest is
    encoded apart and the clock's part put between. Decoding, rendering and encoding a
    page's twenty rows on every request was more than half of listSessions' CPU in-process
    (346 us a call, 149-171 since; bench/HISTORY.md, fifteenth round).

    The views that ``SessionReader`` hands out are one per distinct row as read, and are
    read again and again, so their encoding is kept (``_kept_encoding``). A row that a
    write returned is encoded once and not kept: no read will bring that object back."""
    before, after = _kept_encoding(row) if read else _encoding_around_serviced(row)
    serviced = orjson.dumps(serviced_hours(row.started_at, row.ended_at or now))
    return before + b'"servicedDuration":{"value":' + serviced + b',"unit":"hours"}' + after


def _encoding_around_serviced(row: SessionView) -> tuple[bytes, bytes]:
    """The body's members before ``servicedDuration`` (``{...,``) and after it (``,...}`` or
    ``}``)."""
    before, after = _members(row)
    encode = partial(orjson.dumps, option=_RFC3339_TIMES)
    return encode(before)[:-1] + b",", (b"," + encode(after)[1:]) if after else b"}"


# keyed by the view's identity (a view never changes; a changed row is read as a new view),
# as many as ``SessionReader`` keeps views
_kept_encoding = lru_cache(maxsize=VIEWS_KEPT)(_encoding_around_serviced)


def _members(row: SessionView) -> tuple[dict[str, Any], dict[str, Any]]:
    """The body's members before and after ``servicedDuration``. The request was validated
    against ``SessionCreate``, so its keys are none of those that come after."""
    before: dict[str, Any] = dict(row.request)
    before["sessionId"] = row.session_id
    before["sla"] = row.sla
    before["guaranteeBandwidth"] = row.bandwidth_mbps
    if row.max_latency_ms is None:
        before.pop("maxLatency", None)
    else:
        before["maxLatency"] = row.max_latency_ms
    before["duration"] = {"value": round(row.duration_hours, 6), "unit": "hours"}
    before["status"] = row.status
    if row.status == Status.UNAVAILABLE and row.status_info:
        before["statusInfo"] = row.status_info
    before["createdAt"] = row.created_at
    if row.started_at is not None:
        before["startedAt"] = row.started_at
    if row.expires_at is not None:
        before["expiresAt"] = row.expires_at
    after: dict[str, Any] = {}
    allocation = row.allocation or {}
    if allocation:
        after["resourceGroupId"] = allocation["service_id"]
        after["cloudGatewayIp"] = specs.cloud_gateway_ip(allocation)
        if before.get("routeProtocol") == "BGP":
            after["providerAsn"] = allocation["provider_asn"]
    if row.status != Status.REQUESTED:
        for key, value in (row.actual or {}).items():
            if value is not None:
                after[key] = value
    return before, after
