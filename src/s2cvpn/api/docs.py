"""OpenAPI helpers: the error responses and security each operation declares."""

from __future__ import annotations

from typing import Any

from s2cvpn.api.schemas import ErrorInfo

ERROR_TEXT = {
    400: "Invalid argument, out-of-range value or bad x-correlator (INVALID_ARGUMENT, OUT_OF_RANGE)",
    401: "Missing, malformed, expired or wrongly signed token (UNAUTHENTICATED)",
    403: "The token lacks the scope, or the session belongs to another client (PERMISSION_DENIED)",
    404: "The session does not exist, was deleted or is past its retention (NOT_FOUND)",
    409: "Wrong state (INCOMPATIBLE_STATE) or a duplicate active session (ALREADY_EXISTS)",
    415: "The body is not JSON (UNSUPPORTED_MEDIA_TYPE)",
    422: "The network does not serve the addresses (SITE_TO_CLOUD_VPN.LOCATION_NOT_SERVED) or cannot carry the request "
    "(SITE_TO_CLOUD_VPN.INSUFFICIENT_RESOURCES)",
    429: "Rate limit or quota of the client (TOO_MANY_REQUESTS, QUOTA_EXCEEDED)",
    500: "Unexpected error (INTERNAL)",
    503: "The service or the network is temporarily unavailable (UNAVAILABLE)",
}
XCORRELATOR_HEADER = {
    "x-correlator": {"description": "Echo of the request's x-correlator", "schema": {"type": "string", "maxLength": 256}}
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"model": ErrorInfo, "description": ERROR_TEXT[status], "headers": XCORRELATOR_HEADER}
        for status in (*statuses, 401, 403, 429, 500, 503)
    }


def secured(scope: str) -> dict[str, Any]:
    return {"security": [{"openId": [scope]}]}
