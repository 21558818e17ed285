"""OpenAPI helpers: the error responses and security each operation declares, and
``finish()``, which turns FastAPI's generated document into a CAMARA-style one
(x-correlator everywhere, one error schema per status, bounded types, links).

The committed ``openapi.yaml`` is this document; ``.spectral.yaml`` lints it."""

from __future__ import annotations

from typing import Any

from s2cvpn.api.schemas import XCORRELATOR_PATTERN, ErrorInfo

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
ERROR_CODES: dict[int, tuple[str, ...]] = {
    400: ("INVALID_ARGUMENT", "OUT_OF_RANGE"),
    401: ("UNAUTHENTICATED",),
    403: ("PERMISSION_DENIED",),
    404: ("NOT_FOUND",),
    409: ("ALREADY_EXISTS", "INCOMPATIBLE_STATE"),
    415: ("UNSUPPORTED_MEDIA_TYPE",),
    422: ("SITE_TO_CLOUD_VPN.LOCATION_NOT_SERVED", "SITE_TO_CLOUD_VPN.INSUFFICIENT_RESOURCES"),
    429: ("TOO_MANY_REQUESTS", "QUOTA_EXCEEDED"),
    500: ("INTERNAL",),
    503: ("UNAVAILABLE",),
}
# where one operation can only give some of a status' codes
OPERATION_CODES: dict[tuple[str, int], tuple[str, ...]] = {
    ("createSession", 409): ("ALREADY_EXISTS",),
    ("updateSession", 409): ("INCOMPATIBLE_STATE",),
    ("extendSessionDuration", 409): ("INCOMPATIBLE_STATE",),
}
XCORRELATOR_HEADER = {
    "x-correlator": {"description": "Echo of the request's x-correlator", "schema": {"type": "string", "maxLength": 256}}
}
XCORRELATOR_SCHEMA = {
    "type": "string",
    "pattern": XCORRELATOR_PATTERN,
    "maxLength": 256,
    "description": "Correlation id for the different services; a UUID is recommended",
    "example": "b4333c46-49c0-4f62-80d7-f0ef930f1c46",
}
TAGS = [
    {"name": "Sessions", "description": "Site-to-cloud VPN sessions: create, read, change, extend, delete"},
    {"name": "Assessment", "description": "Feasibility, tiers and price of a connection before ordering it"},
    {"name": "oauth", "description": "The built-in OAuth 2.0 authorization server (client credentials)"},
]
_METHODS = ("get", "put", "post", "patch", "delete")


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"model": ErrorInfo, "description": ERROR_TEXT[status], "headers": XCORRELATOR_HEADER}
        for status in (*statuses, 401, 403, 429, 500, 503)
    }


SECURITY_SCHEME = "openId"  # the one security scheme of the document (app._openapi)


def secured(scope: str) -> dict[str, Any]:
    return {"security": [{SECURITY_SCHEME: [scope]}]}


def secured_scope(openapi_extra: dict[str, Any] | None) -> str | None:
    """The scope ``secured`` put in an operation's ``openapi_extra``, if any."""
    requirements = (openapi_extra or {}).get("security") or [{}]
    scopes = requirements[0].get(SECURITY_SCHEME) or [None]
    return scopes[0]


def error_schema(status: int, codes: tuple[str, ...]) -> dict[str, Any]:
    return {
        "allOf": [
            {"$ref": "#/components/schemas/ErrorInfo"},
            {
                "type": "object",
                "properties": {
                    "status": {"type": "integer", "format": "int32", "minimum": status, "maximum": status, "enum": [status]},
                    "code": {"type": "string", "maxLength": 96, "enum": list(codes)},
                },
            },
        ]
    }


def finish(schema: dict[str, Any], *, api_prefix: str) -> dict[str, Any]:
    """Post-process FastAPI's document in place (see the module docstring)."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422 body: never sent by this service
        schemas.pop(name, None)
    schemas["XCorrelator"] = XCORRELATOR_SCHEMA
    schemas.setdefault("ErrorInfo", ErrorInfo.model_json_schema(ref_template="#/components/schemas/{model}"))
    components["parameters"] = {
        "x-correlator": {
            "name": "x-correlator",
            "in": "header",
            "required": False,
            "description": "Correlation id for the different services; echoed in the response",
            "schema": {"$ref": "#/components/schemas/XCorrelator"},
        }
    }
    components["headers"] = {
        "x-correlator": {
            "description": "Echo of the request's x-correlator",
            "schema": {"$ref": "#/components/schemas/XCorrelator"},
        }
    }
    schema["tags"] = TAGS
    schema["info"]["license"] = {"name": "Apache 2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0.html"}
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            _drop_fastapi_422(operation)
            operation.setdefault("description", operation.get("summary", ""))
            if path.startswith(api_prefix):
                _api_operation(operation)
    for component in schemas.values():
        _tidy(component)
    _links(schema, api_prefix)
    return schema


def _drop_fastapi_422(operation: dict[str, Any]) -> None:
    unprocessable = operation.get("responses", {}).get("422")
    if unprocessable and "HTTPValidationError" in str(unprocessable.get("content", {})):
        del operation["responses"]["422"]


def _api_operation(operation: dict[str, Any]) -> None:
    parameters = operation.setdefault("parameters", [])
    for parameter in parameters:
        _parameter(parameter)
    parameters.insert(0, {"$ref": "#/components/parameters/x-correlator"})
    operation_id = operation.get("operationId", "")
    for status, response in operation.get("responses", {}).items():
        headers = response.setdefault("headers", {})
        headers["x-correlator"] = {"$ref": "#/components/headers/x-correlator"}
        code = int(status)
        if code >= 400:
            codes = OPERATION_CODES.get((operation_id, code), ERROR_CODES.get(code, ("INTERNAL",)))
            response["content"] = {"application/json": {"schema": error_schema(code, codes)}}
        elif response.get("description") == "Successful Response":
            response["description"] = "Success"


def _parameter(parameter: dict[str, Any]) -> None:
    parameter_schema = parameter.setdefault("schema", {})
    parameter_schema.pop("title", None)
    name = parameter.get("name")
    if name == "sessionId":
        parameter_schema["maxLength"] = 36
        parameter.setdefault("description", "Session identifier (UUID) returned by createSession")
    elif name == "Idempotency-Key":
        parameter.setdefault(
            "description", "Same key from the same client within 24 hours: the first session is returned, nothing new is created"
        )
    if parameter_schema.get("type") == "integer":
        parameter_schema.setdefault("format", "int32")


def _tidy(node: Any) -> None:
    """Drop pydantic's generated titles and give single-value literals an enum."""
    if isinstance(node, dict):
        properties = node.get("properties")
        if isinstance(properties, dict):
            for value in properties.values():
                if isinstance(value, dict):
                    value.pop("title", None)
        if "const" in node and "enum" not in node:
            node["enum"] = [node["const"]]
        for value in node.values():
            _tidy(value)
    elif isinstance(node, list):
        for value in node:
            _tidy(value)


def _links(schema: dict[str, Any], api_prefix: str) -> None:
    """OpenAPI links from createSession's 201 to the operations on the new session."""
    created = schema.get("paths", {}).get(f"{api_prefix}/sessions", {}).get("post", {}).get("responses", {}).get("201")
    if created is None:
        return
    parameters = {"sessionId": "$response.body#/sessionId"}
    created["links"] = {
        name: {"operationId": operation_id, "parameters": parameters, "description": text}
        for name, operation_id, text in (
            ("GetSession", "getSession", "Read the new session"),
            ("UpdateSession", "updateSession", "Change the new session"),
            ("ExtendSessionDuration", "extendSessionDuration", "Extend the new session"),
            ("DeleteSession", "deleteSession", "Delete the new session"),
        )
    }
