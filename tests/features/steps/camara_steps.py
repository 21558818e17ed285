"""Step definitions in the wording of the CAMARA API testing guideline, for the
Site-to-Cloud VPN features in ``tests/features/``. They only speak HTTP to the target
(see ``target.py``), so they serve any implementation of the contract."""

from __future__ import annotations

import copy
import json
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from pytest_bdd import given, parsers, then, when
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012 as _DRAFT

from tests.features.steps.target import ROOT, Target

OPERATIONS = {
    "assessConnectionFeasibility": "POST",
    "createSession": "POST",
    "listSessions": "GET",
    "getSession": "GET",
    "updateSession": "PATCH",
    "extendSessionDuration": "POST",
    "deleteSession": "DELETE",
}
NOT_SET = object()
EXISTING = object()  # "an existing session": created when the request is sent, if still needed


@dataclass
class ApiRequest:
    """What one scenario builds up and sends, and what came back."""

    target: Target
    resource: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    path: dict[str, Any] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    body: Any = NOT_SET
    raw: bytes | None = None
    response: httpx.Response | None = None
    created: list[tuple[str, str]] = field(default_factory=list)  # (sessionId, token kind)
    remembered: dict[str, Any] = field(default_factory=dict)

    def new_session(self, body: dict[str, Any] | None = None, *, token_kind: str = "valid", status: str | None = "AVAILABLE") -> dict[str, Any]:
        session = self.target.create_session(body or self.target.session_body(), token_kind=token_kind)
        self.created.append((session["sessionId"], token_kind))
        if status:
            session = self.target.wait_status(session["sessionId"], status, token_kind=token_kind)
        return session

    def cleanup(self) -> None:
        """Delete what the scenario created and wait until the network released it, so
        later scenarios and tests find the capacity free."""
        deleted = [sid for sid, kind in self.created if self.target.delete_session(sid, token_kind=kind) in (202, 404)]
        for session_id, kind in self.created:
            if session_id in deleted or self.target.get_session(session_id, token_kind=kind).status_code != 404:
                self.target.wait_gone(session_id, token_kind=kind)

    @property
    def answer(self) -> httpx.Response:
        assert self.response is not None, "no request was sent"
        return self.response

    def json(self) -> Any:
        return self.answer.json()


@pytest.fixture
def api_request(target: Target) -> Any:
    state = ApiRequest(target)
    yield state
    state.cleanup()


# --- JSONPath (the subset the features use: $.a.b[0].c) ---------------------------------
_TOKEN = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def _steps(path: str) -> list[str | int]:
    assert path.startswith("$"), path
    steps: list[str | int] = []
    rest = path[1:]
    while rest:
        match = _TOKEN.match(rest)
        assert match, f"unsupported JSONPath {path}"
        steps.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        rest = rest[match.end() :]
    return steps


MISSING = object()


def json_get(document: Any, path: str) -> Any:
    node = document
    for step in _steps(path):
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                return MISSING
        elif not isinstance(node, dict) or step not in node:
            return MISSING
        node = node[step]
    return node


def json_set(document: Any, path: str, value: Any) -> None:
    *parents, last = _steps(path)
    node = document
    for step in parents:
        node = node[step]
    node[last] = value


def json_delete(document: Any, path: str) -> None:
    *parents, last = _steps(path)
    node = document
    for step in parents:
        node = node[step]
    del node[last]


# --- Background -----------------------------------------------------------------------
@given(parsers.parse('an environment at "{api_root}"'))
def environment(api_request: ApiRequest, api_root: str) -> None:
    assert api_root == "apiRoot"  # the target (local server or S2CVPN_FEATURES_API_ROOT) gives the value


@given(parsers.parse('the resource "{resource}"'))
def resource(api_request: ApiRequest, resource: str) -> None:
    api_request.resource = resource


@given(parsers.parse('the header "{name}" is set to "{value}"'))
def header_value(api_request: ApiRequest, name: str, value: str) -> None:
    api_request.headers[name] = value


@given('the header "Authorization" is set to a valid access token')
def valid_token(api_request: ApiRequest) -> None:
    api_request.headers["Authorization"] = f"Bearer {api_request.target.token('valid')}"


@given('the header "x-correlator" complies with the schema at "#/components/schemas/XCorrelator"')
def valid_correlator(api_request: ApiRequest) -> None:
    api_request.headers["x-correlator"] = str(uuid.uuid4())


BODIES = {
    "SessionCreate": lambda target: target.session_body(),
    "AssessmentRequest": lambda target: target.assessment_body(),
    "SessionUpdate": lambda target: {"guaranteeBandwidth": 20},
    "ExtendRequest": lambda target: {"requestedAdditionalDuration": {"value": 1, "unit": "hours"}},
}


@given(parsers.parse('the request body is set by default to a request body compliant with the schema at "/components/schemas/{name}"'))
def default_body(api_request: ApiRequest, name: str) -> None:
    api_request.body = BODIES[name](api_request.target)


@given('the path parameter "sessionId" is set by default to an existing session')
def default_session(api_request: ApiRequest) -> None:
    api_request.path["sessionId"] = EXISTING


# --- Given: path parameters -------------------------------------------------------------
@given('the path parameter "sessionId" is set to a random UUID')
def random_session(api_request: ApiRequest) -> None:
    api_request.path["sessionId"] = str(uuid.uuid4())


@given(parsers.parse('the path parameter "sessionId" is set to "{value}"'))
def session_value(api_request: ApiRequest, value: str) -> None:
    api_request.path["sessionId"] = value


@given('the path parameter "sessionId" is set to the id of a session created by another API client')
def other_clients_session(api_request: ApiRequest) -> None:
    api_request.path["sessionId"] = api_request.new_session(token_kind="other", status=None)["sessionId"]


@given('the path parameter "sessionId" is set to the id of a session that has expired')
def expired_session(api_request: ApiRequest) -> None:
    body = api_request.target.session_body()
    body["duration"] = {"value": 0.02, "unit": "minutes"}
    session = api_request.new_session(body, status="UNAVAILABLE")
    api_request.path["sessionId"] = session["sessionId"]


@given('the path parameter "sessionId" is set to the id of a deleted session')
def deleted_session(api_request: ApiRequest) -> None:
    session = api_request.new_session(status=None)
    assert api_request.target.delete_session(session["sessionId"]) == 202
    api_request.target.wait_gone(session["sessionId"])
    api_request.path["sessionId"] = session["sessionId"]


@given(parsers.parse("an existing session created with the request body property \"{path}\" set to {value}"))
def existing_session_with(api_request: ApiRequest, path: str, value: str) -> None:
    body = api_request.target.session_body()
    json_set(body, path, json.loads(value))
    session = api_request.new_session(body)
    api_request.path["sessionId"] = session["sessionId"]
    api_request.remembered["session"] = session
    api_request.remembered["request"] = body


# --- Given: headers -------------------------------------------------------------------
@given('the header "Authorization" is not sent')
def no_token(api_request: ApiRequest) -> None:
    api_request.headers.pop("Authorization", None)


@given('the header "Authorization" is set to an expired access token')
def expired_token(api_request: ApiRequest) -> None:
    api_request.headers["Authorization"] = f"Bearer {api_request.target.token('expired')}"


@given('the header "Authorization" is set to an invalid access token')
def invalid_token(api_request: ApiRequest) -> None:
    valid = api_request.target.token("valid")
    head, payload, signature = (valid.split(".") + ["", "", ""])[:3]
    tampered = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
    api_request.headers["Authorization"] = f"Bearer {head}.{payload}.{tampered}"


@given(parsers.parse('the header "Authorization" is set to a valid access token which does not include scope "{scope}"'))
def token_without_scope(api_request: ApiRequest, scope: str) -> None:
    api_request.headers["Authorization"] = f"Bearer {api_request.target.token_without(scope)}"


@given('the header "x-correlator" does not comply with the schema at "#/components/schemas/XCorrelator"')
def invalid_correlator(api_request: ApiRequest) -> None:
    api_request.headers["x-correlator"] = "not a valid correlator"


@given(parsers.parse('the header "{name}" is removed'))
def header_removed(api_request: ApiRequest, name: str) -> None:
    api_request.headers.pop(name, None)


# --- Given: query and body ------------------------------------------------------------
@given(parsers.parse('the query parameter "{name}" is set to "{value}"'))
def query_value(api_request: ApiRequest, name: str, value: str) -> None:
    api_request.query[name] = value


@given("the request body is not included")
def no_body(api_request: ApiRequest) -> None:
    api_request.body = NOT_SET
    api_request.raw = b""


@given("the request body is set to {}")
def empty_body(api_request: ApiRequest) -> None:
    api_request.body = {}


@given("the request body is set to a text that is not JSON")
def not_json(api_request: ApiRequest) -> None:
    api_request.raw = b'{"sla": "A",'


@given(parsers.re(r'the request body property "(?P<path>[^"]+)" is set to (?P<value>(?:true|false|null|[-\d"\[{]).*)'))
def body_property(api_request: ApiRequest, path: str, value: str) -> None:
    json_set(api_request.body, path, json.loads(value))


@given(parsers.parse('the request body property "{path}" is removed'))
def body_property_removed(api_request: ApiRequest, path: str) -> None:
    json_delete(api_request.body, path)


@given(parsers.parse('the request body property "{path}" is a string of {length:d} characters'))
def body_long_string(api_request: ApiRequest, path: str, length: int) -> None:
    json_set(api_request.body, path, "x" * length)


@given(parsers.parse('the request body property "{path}" is a list of {count:d} distinct application servers'))
def body_many_servers(api_request: ApiRequest, path: str, count: int) -> None:
    json_set(api_request.body, path, [{"ipv4Address": f"10.99.{i // 250}.{i % 250 + 1}/32"} for i in range(count)])


@given("the request body property \"$.customerEdge.primaryIpAddress.ipv4Address\" is set to an address the network does not serve")
def unserved_address(api_request: ApiRequest) -> None:
    json_set(api_request.body, "$.customerEdge.primaryIpAddress.ipv4Address", api_request.target.unserved_address)


@given("the request body is set to the body of an existing active session")
def duplicate_body(api_request: ApiRequest) -> None:
    body = api_request.target.session_body()
    api_request.new_session(copy.deepcopy(body), status=None)
    api_request.body = body


@given("the request body property \"$.sink\" is set to a sink the test can read")
def readable_sink(api_request: ApiRequest) -> None:
    if api_request.target.sink is None:
        pytest.skip("this target has no sink the test can read (local mode only)")
    api_request.body["sink"] = f"{api_request.target.sink_url}/features/{uuid.uuid4().hex}"


@given(parsers.parse('an existing session with a sink the test can read'))
def session_with_sink(api_request: ApiRequest) -> None:
    if api_request.target.sink is None:
        pytest.skip("this target has no sink the test can read (local mode only)")
    body = api_request.target.session_body()
    body["sink"] = f"{api_request.target.sink_url}/features/{uuid.uuid4().hex}"
    body["sinkCredential"] = {
        "credentialType": "ACCESSTOKEN",
        "accessToken": "features-sink-token",
        "accessTokenExpiresUtc": "2099-01-01T00:00:00Z",
        "accessTokenType": "bearer",
    }
    session = api_request.new_session(body)
    api_request.path["sessionId"] = session["sessionId"]


@given(parsers.parse('a session was created by the API client with the header "Idempotency-Key" set to "{key}"'))
def idempotent_first(api_request: ApiRequest, key: str) -> None:
    unique_key = f"{key}-{uuid.uuid4().hex[:8]}"
    with api_request.target.http() as http:
        first = http.post(
            api_request.target.url(api_request.resource), json=api_request.body,
            headers={**api_request.headers, "Idempotency-Key": unique_key},
        )
    assert first.status_code == 201, first.text
    api_request.created.append((first.json()["sessionId"], "valid"))
    api_request.remembered["session"] = first.json()
    api_request.headers["Idempotency-Key"] = unique_key


@given(parsers.parse("{count:d} sessions of the API client exist"))
def sessions_exist(api_request: ApiRequest, count: int) -> None:
    api_request.remembered["sessions"] = [api_request.new_session(status=None)["sessionId"] for _ in range(count)]


@given("a session of another API client exists")
def other_session_exists(api_request: ApiRequest) -> None:
    api_request.remembered["other"] = api_request.new_session(token_kind="other", status=None)["sessionId"]


# --- When -----------------------------------------------------------------------------
@when(parsers.parse('the request "{operation_id}" is sent'))
def send(api_request: ApiRequest, operation_id: str) -> None:
    method = OPERATIONS[operation_id]
    if api_request.path.get("sessionId") is EXISTING:
        api_request.path["sessionId"] = api_request.new_session()["sessionId"]
    resource = api_request.resource
    for name, value in api_request.path.items():
        resource = resource.replace("{" + name + "}", str(value))
    headers = dict(api_request.headers)
    content: bytes | None = api_request.raw
    if content is None and api_request.body is not NOT_SET:
        content = json.dumps(api_request.body).encode()
    if content is None or method in ("GET", "DELETE"):
        content = None
        headers.pop("Content-Type", None)
    with api_request.target.http() as http:
        api_request.response = http.request(
            method, api_request.target.url(resource), params=api_request.query or None, headers=headers, content=content
        )
    if operation_id == "createSession" and api_request.response.status_code == 201:
        api_request.created.append((api_request.response.json()["sessionId"], "valid"))


# --- Then -----------------------------------------------------------------------------
@then(parsers.parse("the response status code is {status:d}"))
def status_code(api_request: ApiRequest, status: int) -> None:
    assert api_request.answer.status_code == status, api_request.answer.text


@then('the response header "x-correlator" has same value as the request header "x-correlator"')
def correlator_echoed(api_request: ApiRequest) -> None:
    assert api_request.answer.headers.get("x-correlator") == api_request.headers["x-correlator"]


@then('the response header "x-correlator" is not set to the invalid value')
def correlator_not_echoed(api_request: ApiRequest) -> None:
    assert api_request.answer.headers.get("x-correlator") != api_request.headers["x-correlator"]


@then(parsers.parse('the response header "Content-Type" is "{media}"'))
def content_type(api_request: ApiRequest, media: str) -> None:
    assert api_request.answer.headers.get("content-type", "").split(";")[0].strip() == media


@then(parsers.parse('the response header "{name}" exists'))
def header_exists(api_request: ApiRequest, name: str) -> None:
    assert api_request.answer.headers.get(name), dict(api_request.answer.headers)


@then(parsers.parse('the response header "Location" ends with the response property "{path}"'))
def location_header(api_request: ApiRequest, path: str) -> None:
    assert api_request.answer.headers["location"].endswith("/" + str(json_get(api_request.json(), path)))


@then("the response body is empty")
def body_empty(api_request: ApiRequest) -> None:
    assert api_request.answer.content == b""


@cache
def _oas(path: str) -> tuple[dict[str, Any], Registry]:
    document = yaml.safe_load(Path(path).read_text())
    return document, Registry().with_resource("urn:s2cvpn:oas", Resource.from_contents(document, default_specification=_DRAFT))


def validate_against(instance: Any, pointer: str) -> None:
    path = os.environ.get("S2CVPN_FEATURES_OPENAPI", str(ROOT / "openapi.yaml"))
    _document, registry = _oas(path)
    validator = Draft202012Validator({"$ref": f"urn:s2cvpn:oas#{pointer.lstrip('#')}"}, registry=registry, format_checker=FormatChecker())
    problems = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
    assert not problems, "; ".join(f"{list(p.path)}: {p.message}" for p in problems[:5])


@then(parsers.parse('the response body complies with the OAS schema at "{pointer}"'))
def complies(api_request: ApiRequest, pointer: str) -> None:
    validate_against(api_request.json(), pointer)


@then(parsers.re(r'the response property "(?P<path>[^"]+)" is (?P<value>(?:true|false|null|[-\d"\[{]).*)'))
def property_is(api_request: ApiRequest, path: str, value: str) -> None:
    """``is 400``, ``is "NOT_FOUND"``, ``is true``, or ``is "A" or "B"`` (JSON values)."""
    allowed = [json.loads(v) for v in re.split(r'(?<=")\s+or\s+(?=")', value)] if value.startswith('"') else [json.loads(value)]
    assert json_get(api_request.json(), path) in allowed, api_request.json()


@then(parsers.parse('the response property "{path}" is at most {limit:g}'))
def property_at_most(api_request: ApiRequest, path: str, limit: float) -> None:
    assert json_get(api_request.json(), path) <= limit, api_request.json()


@then(parsers.parse('the response property "{path}" is greater than {limit:g}'))
def property_greater(api_request: ApiRequest, path: str, limit: float) -> None:
    assert json_get(api_request.json(), path) > limit, api_request.json()


@then(parsers.parse('the response property "{path}" exists'))
def property_exists(api_request: ApiRequest, path: str) -> None:
    assert json_get(api_request.json(), path) is not MISSING, api_request.json()


@then(parsers.parse('the response property "{path}" does not exist'))
def property_absent(api_request: ApiRequest, path: str) -> None:
    assert json_get(api_request.json(), path) is MISSING, api_request.json()


@then(parsers.parse('the response property "{path}" has {count:d} items'))
def property_count(api_request: ApiRequest, path: str, count: int) -> None:
    assert len(json_get(api_request.json(), path)) == count, api_request.json()


@then(parsers.parse('the response property "{path}" is equal to the request body property "{request_path}"'))
def property_echoed(api_request: ApiRequest, path: str, request_path: str) -> None:
    request_body = api_request.body if api_request.body is not NOT_SET else api_request.remembered["request"]
    assert json_get(api_request.json(), path) == json_get(request_body, request_path)


@then(parsers.parse('the response property "{path}" is equal to the path parameter "sessionId"'))
def property_is_path(api_request: ApiRequest, path: str) -> None:
    assert json_get(api_request.json(), path) == api_request.path["sessionId"]


@then('the response property "$.message" contains a user friendly text')
def friendly_message(api_request: ApiRequest) -> None:
    message = api_request.json().get("message")
    assert isinstance(message, str) and message.strip() and "Traceback" not in message


@then('the response property "$.sessionId" is that of the first creation')
def same_as_first(api_request: ApiRequest) -> None:
    assert api_request.json()["sessionId"] == api_request.remembered["session"]["sessionId"]


@then("the response property \"$.items\" contains the sessions of the API client")
def items_contain_own(api_request: ApiRequest) -> None:
    listed = {item["sessionId"] for item in api_request.json()["items"]}
    assert set(api_request.remembered["sessions"]) <= listed


@then("the response property \"$.items\" does not contain the session of the other API client")
def items_exclude_other(api_request: ApiRequest) -> None:
    assert api_request.remembered["other"] not in {item["sessionId"] for item in api_request.json()["items"]}


@then("every item of the response property \"$.items\" complies with the OAS schema at \"#/components/schemas/SessionInfo\"")
def items_comply(api_request: ApiRequest) -> None:
    for item in api_request.json()["items"]:
        validate_against(item, "#/components/schemas/SessionInfo")


@then(parsers.parse('reading the session eventually answers {status:d}'))
def eventually(api_request: ApiRequest, status: int) -> None:
    assert status == 404
    api_request.target.wait_gone(api_request.path["sessionId"])


@then(parsers.parse('reading the session gives the response property "{path}" as {value}'))
def read_back(api_request: ApiRequest, path: str, value: str) -> None:
    response = api_request.target.get_session(api_request.path["sessionId"])
    assert response.status_code == 200
    assert json_get(response.json(), path) == json.loads(value)


@then(parsers.parse('reading the session shows the status "{status}"'))
def read_status(api_request: ApiRequest, status: str) -> None:
    assert api_request.target.get_session(api_request.path["sessionId"]).json()["status"] == status


@then(parsers.parse('an event is received at the sink with "$.data.status" "{status}" and "$.data.statusInfo" "{info}"'))
def event_received(api_request: ApiRequest, status: str, info: str) -> None:
    sink = api_request.target.sink
    session_id = api_request.path["sessionId"]
    deadline = time.monotonic() + api_request.target.timeout
    while time.monotonic() < deadline:
        for event in sink.events_for(session_id):
            data = event["body"]["data"]
            if data.get("status") == status and data.get("statusInfo") == info:
                assert event["headers"]["content-type"].startswith("application/cloudevents+json")
                assert event["headers"]["authorization"] == "Bearer features-sink-token"
                assert event["body"]["specversion"] == "1.0"
                assert event["body"]["type"] == "org.camaraproject.site-to-cloud-vpn.v0.session-status-changed"
                return
        time.sleep(0.05)
    raise AssertionError(f"no {status}/{info} event for {session_id}: {sink.events_for(session_id)}")
