"""Schemathesis fuzzes the running server with a real token: every operation of the
versioned API with schema-valid and schema-invalid data, then stateful sequences along
the OpenAPI links (createSession -> getSession/updateSession/extend/deleteSession).

Checks: no 5xx, status codes, content types, headers and bodies as documented, invalid
data refused, and every error in the CAMARA shape with the x-correlator echoed.
CI keeps it short (FUZZ_EXAMPLES, default 25 per operation); README "Longer conformance
runs" gives the long command."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.stateful import run_state_machine_as_test
from schemathesis import GenerationMode
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    use_after_free,
)

from tests.support.payloads import session_request
from tests.support.servers import ApiClient, ServerProcess, register_client

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
STATEFUL_STEPS = int(os.environ.get("FUZZ_STATEFUL_EXAMPLES", "10"))
EXECUTED: list[int] = []


def camara_error(ctx: CheckContext, response: schemathesis.Response, case: schemathesis.Case) -> bool | None:
    """Every 4xx/5xx is exactly {status, code, message} with status = the HTTP status."""
    if response.status_code < 400:
        return None
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"status", "code", "message"}, body
    assert body["status"] == response.status_code, body
    assert body["code"] and body["code"] == body["code"].upper(), body
    assert "Traceback" not in response.text
    return True


def correlator_echoed(ctx: CheckContext, response: schemathesis.Response, case: schemathesis.Case) -> bool | None:
    sent = (case.headers or {}).get("x-correlator")
    if sent and response.status_code != 400:
        assert response.headers.get("x-correlator") == [sent], response.headers
    return True


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    use_after_free,
    camara_error,
    correlator_echoed,
]


@pytest.fixture
def fuzz_target(server: ServerProcess) -> Iterator[tuple[ServerProcess, str]]:
    with server.api_client(name=f"fuzz-{uuid.uuid4().hex[:8]}") as api:
        yield server, api.token
        api.delete_all_sessions()


@pytest.fixture
def api_schema(fuzz_target: tuple[ServerProcess, str]) -> Any:
    server, token = fuzz_target
    document = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, request_timeout=30)
    schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=EXAMPLES)
    return schema.include(path_regex=r"^/site-to-cloud-vpn/v0\.1/(sessions|assessment)").exclude(path_regex=r"/l3nm$")


OPERATIONS = ["assessConnectionFeasibility", "createSession", "listSessions", "getSession", "updateSession",
              "extendSessionDuration", "deleteSession"]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
@pytest.mark.parametrize("operation_id", OPERATIONS)
def test_operation_conforms(api_schema: Any, operation_id: str, mode: GenerationMode) -> None:
    operation = api_schema.find_operation_by_id(operation_id)
    calls: list[int] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
    def run(case: schemathesis.Case) -> None:
        calls.append(1)
        case.call_and_validate(checks=CHECKS)

    run()
    EXECUTED.extend(calls)
    assert calls, "schemathesis generated no case"


def test_stateful_links(api_schema: Any, fuzz_target: tuple[ServerProcess, str]) -> None:
    machine = api_schema.as_state_machine()
    outcomes: list[tuple[str, int]] = []
    server, _token = fuzz_target

    class Machine(machine):  # type: ignore[misc, valid-type]
        """Each sequence starts on the same state: its own new API client (so listSessions
        starts empty), each session it creates waited for until AVAILABLE (so what the
        next step is answered does not depend on the worker's timing), and those sessions
        deleted at its end (so capacity does not pile up). Hypothesis runs some sequences
        again and stops with FlakyStrategyDefinition when one takes other steps."""

        def setup(self) -> None:
            client_id, secret = register_client(server.database_url, f"fuzz-{uuid.uuid4().hex[:8]}")
            self.api = ApiClient(server.url, server.token(client_id, secret), client_id)
            self.created: list[str] = []

        def before_call(self, case: Any) -> None:
            """Random addresses are not on the demo network: create on served ones, so the
            sequences reach 201 and follow the links (bodies are fuzzed per operation above)."""
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {self.api.token}"}
            if case.operation.label == "POST /site-to-cloud-vpn/v0.1/sessions":
                case.body = session_request()
                case.headers["Content-Type"] = "application/json"
                case.media_type = "application/json"

        def after_call(self, response: Any, case: Any) -> None:
            if case.operation.label == "POST /site-to-cloud-vpn/v0.1/sessions" and response.status_code == 201:
                self.created.append(response.json()["sessionId"])
                self.api.wait_status(self.created[-1], "AVAILABLE")

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            EXECUTED.append(1)
            outcomes.append((case.operation.label, response.status_code))
            case.validate_response(response, checks=CHECKS)

        def teardown(self) -> None:
            for session_id in self.created:
                self.api.delete(f"/sessions/{session_id}")
            self.api.close()
            super().teardown()

    before = len(EXECUTED)
    run_state_machine_as_test(
        Machine,
        settings=settings(max_examples=STATEFUL_STEPS, stateful_step_count=6, deadline=None,
                          suppress_health_check=list(HealthCheck), derandomize=True, database=None),
    )
    assert len(EXECUTED) > before
    # a 2xx on /sessions/{sessionId} needs an id a createSession returned: the links were followed
    followed = [o for o in outcomes if "{sessionId}" in o[0] and o[1] in (200, 202)]
    assert followed, outcomes
    links = api_schema.raw_schema["paths"]["/site-to-cloud-vpn/v0.1/sessions"]["post"]["responses"]["201"]["links"]
    assert {link["operationId"] for link in links.values()} >= {"getSession", "updateSession", "deleteSession"}
