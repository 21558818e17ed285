"""Every error the service can answer with, named after its CAMARA code.

Services raise these; ``api/handlers.py`` turns them into ``{status, code, message}``.
Nothing below ``api/`` raises HTTP exceptions.

    S2CError
    ├── InvalidArgument (400) ── OutOfRange (400)
    ├── Unauthenticated (401)
    ├── PermissionDenied (403)
    ├── NotFound (404)
    ├── IncompatibleState (409), AlreadyExists (409)
    ├── UnsupportedMediaType (415)
    ├── LocationNotServed (422), InsufficientResources (422)
    ├── TooManyRequests (429), QuotaExceeded (429)
    ├── BadGateway (502), Unavailable (503), Timeout (504)
    └── Internal (500)

    DriverError                      raised by network drivers, never seen by a client
    ├── DriverUnavailable            the network (or its controller) cannot be reached
    ├── DriverTimeout                it did not answer in time
    └── DriverRejected               it refused the change (e.g. a resource vanished)
"""

from __future__ import annotations


class S2CError(Exception):
    status: int = 500
    code: str = "INTERNAL"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class InvalidArgument(S2CError):
    status, code = 400, "INVALID_ARGUMENT"


class OutOfRange(InvalidArgument):
    status, code = 400, "OUT_OF_RANGE"


class Unauthenticated(S2CError):
    status, code = 401, "UNAUTHENTICATED"


class PermissionDenied(S2CError):
    status, code = 403, "PERMISSION_DENIED"


class NotFound(S2CError):
    status, code = 404, "NOT_FOUND"


class IncompatibleState(S2CError):
    status, code = 409, "INCOMPATIBLE_STATE"


class AlreadyExists(S2CError):
    status, code = 409, "ALREADY_EXISTS"


class UnsupportedMediaType(S2CError):
    status, code = 415, "UNSUPPORTED_MEDIA_TYPE"


class LocationNotServed(S2CError):
    status, code = 422, "SITE_TO_CLOUD_VPN.LOCATION_NOT_SERVED"


class InsufficientResources(S2CError):
    status, code = 422, "SITE_TO_CLOUD_VPN.INSUFFICIENT_RESOURCES"


class TooManyRequests(S2CError):
    status, code = 429, "TOO_MANY_REQUESTS"


class QuotaExceeded(S2CError):
    status, code = 429, "QUOTA_EXCEEDED"


class Internal(S2CError):
    status, code = 500, "INTERNAL"


class BadGateway(S2CError):
    status, code = 502, "BAD_GATEWAY"


class Unavailable(S2CError):
    status, code = 503, "UNAVAILABLE"


class Timeout(S2CError):
    status, code = 504, "TIMEOUT"


class DriverError(Exception):
    """A network driver failed. Services translate it; clients never see the raw text."""


class DriverUnavailable(DriverError):
    pass


class DriverTimeout(DriverError):
    pass


class DriverRejected(DriverError):
    pass
