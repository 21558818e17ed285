"""The API implementation the feature files run against.

By default: this project's own test server (the ``server`` fixture), with clients and
tokens registered for the run. Any other implementation of the contract can be tested
with the same features by setting environment variables:

| variable | meaning |
|---|---|
| ``S2CVPN_FEATURES_API_ROOT`` | apiRoot, e.g. ``https://api.example.com`` (turns the external mode on) |
| ``S2CVPN_FEATURES_BASE_PATH`` | replaces ``/site-to-cloud-vpn/v0.1`` in the features' resources |
| ``S2CVPN_FEATURES_TOKEN`` | access token with every scope of the API |
| ``S2CVPN_FEATURES_OTHER_TOKEN`` | access token of another API client (403 "session of another client" scenarios) |
| ``S2CVPN_FEATURES_NO_SCOPE_TOKEN`` | valid access token with none of the API's scopes (403 "missing scope") |
| ``S2CVPN_FEATURES_EXPIRED_TOKEN`` | an expired, otherwise valid access token |
| ``S2CVPN_FEATURES_SESSION_BODY`` / ``S2CVPN_FEATURES_ASSESSMENT_BODY`` | JSON files: valid bodies on that network |
| ``S2CVPN_FEATURES_UNSERVED_ADDRESS`` | an IPv4 address the network does not serve (default 192.0.2.10) |
| ``S2CVPN_FEATURES_MAX_DURATION_HOURS`` | the operator's maximum session duration (default 43800) |
| ``S2CVPN_FEATURES_OPENAPI`` | the OpenAPI document responses are checked against (default: openapi.yaml) |
| ``S2CVPN_FEATURES_TIMEOUT`` | seconds to wait for a session status (default 20) |

Scenarios that need what only the local mode has (a notification sink the test reads)
are skipped in the external mode; a token variable that is not set skips the scenarios
that need it.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[3]
DEFAULT_BASE_PATH = "/site-to-cloud-vpn/v0.1"
EXTERNAL = bool(os.environ.get("S2CVPN_FEATURES_API_ROOT"))


@dataclass
class Target:
    api_root: str
    base_path: str = DEFAULT_BASE_PATH
    tokens: dict[str, str | None] = field(default_factory=dict)
    session_body: Callable[[], dict[str, Any]] = dict
    assessment_body: Callable[[], dict[str, Any]] = dict
    unserved_address: str = "192.0.2.10"
    max_duration_hours: float = 43800
    sink_url: str | None = None
    sink: Any = None
    timeout: float = 20.0
    verify: Any = True
    token_without_scope: Callable[[str], str] | None = None

    def token_without(self, scope: str) -> str:
        if self.token_without_scope is not None:
            return self.token_without_scope(scope)
        return self.token("no-scope")

    def token(self, kind: str) -> str:
        value = self.tokens.get(kind)
        if not value:
            pytest.skip(f"no {kind} access token configured for this target")
        return value

    def url(self, resource: str) -> str:
        if self.base_path != DEFAULT_BASE_PATH and resource.startswith(DEFAULT_BASE_PATH):
            resource = self.base_path + resource[len(DEFAULT_BASE_PATH) :]
        return self.api_root.rstrip("/") + resource

    def http(self) -> httpx.Client:
        return httpx.Client(timeout=30, verify=self.verify)

    # helpers the Given steps use to prepare sessions -------------------------------------
    def create_session(self, body: dict[str, Any], *, token_kind: str = "valid") -> dict[str, Any]:
        with self.http() as http:
            response = http.post(self.url(f"{DEFAULT_BASE_PATH}/sessions"), json=body, headers=self._auth(token_kind))
        assert response.status_code == 201, f"setup: createSession answered {response.status_code}: {response.text}"
        return response.json()  # type: ignore[no-any-return]

    def get_session(self, session_id: str, *, token_kind: str = "valid") -> httpx.Response:
        with self.http() as http:
            return http.get(self.url(f"{DEFAULT_BASE_PATH}/sessions/{session_id}"), headers=self._auth(token_kind))

    def delete_session(self, session_id: str, *, token_kind: str = "valid") -> int:
        with self.http() as http:
            return http.delete(self.url(f"{DEFAULT_BASE_PATH}/sessions/{session_id}"), headers=self._auth(token_kind)).status_code

    def wait_status(self, session_id: str, status: str, *, token_kind: str = "valid") -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        last: Any = None
        while time.monotonic() < deadline:
            response = self.get_session(session_id, token_kind=token_kind)
            last = response.json() if response.status_code == 200 else response.status_code
            if response.status_code == 200 and last["status"] == status:
                return last  # type: ignore[no-any-return]
            time.sleep(0.05)
        raise AssertionError(f"setup: session {session_id} did not reach {status}; last seen {last}")

    def wait_gone(self, session_id: str, *, token_kind: str = "valid") -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.get_session(session_id, token_kind=token_kind).status_code == 404:
                return
            time.sleep(0.05)
        raise AssertionError(f"session {session_id} still readable after {self.timeout}s")

    def _auth(self, kind: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(kind)}"}


def _body_from(variable: str) -> Callable[[], dict[str, Any]]:
    path = os.environ.get(variable)
    if not path:
        raise pytest.UsageError(f"{variable} must name a JSON file with a valid request body on the target's network")
    body = json.loads(Path(path).read_text())
    return lambda: copy.deepcopy(body)


def external_target() -> Target:
    env = os.environ
    return Target(
        api_root=env["S2CVPN_FEATURES_API_ROOT"],
        base_path=env.get("S2CVPN_FEATURES_BASE_PATH", DEFAULT_BASE_PATH),
        tokens={
            "valid": env.get("S2CVPN_FEATURES_TOKEN"),
            "other": env.get("S2CVPN_FEATURES_OTHER_TOKEN"),
            "no-scope": env.get("S2CVPN_FEATURES_NO_SCOPE_TOKEN"),
            "expired": env.get("S2CVPN_FEATURES_EXPIRED_TOKEN"),
        },
        session_body=_body_from("S2CVPN_FEATURES_SESSION_BODY"),
        assessment_body=_body_from("S2CVPN_FEATURES_ASSESSMENT_BODY"),
        unserved_address=env.get("S2CVPN_FEATURES_UNSERVED_ADDRESS", "192.0.2.10"),
        max_duration_hours=float(env.get("S2CVPN_FEATURES_MAX_DURATION_HOURS", "43800")),
        timeout=float(env.get("S2CVPN_FEATURES_TIMEOUT", "20")),
    )


def local_target(server: Any, sink: Any) -> Target:
    """This project's test server: two registered clients, tokens narrowed to one scope,
    and an expired token signed with the server's own key."""
    from s2cvpn.config import ALL_SCOPES
    from tests.support import payloads
    from tests.support.servers import register_client

    suffix = uuid.uuid4().hex[:8]
    main_id, main_secret = register_client(server.database_url, f"features-{suffix}")
    other_id, other_secret = register_client(server.database_url, f"features-other-{suffix}")
    valid = server.token(main_id, main_secret)
    narrowed: dict[str, str] = {}

    def token_without(scope: str) -> str:
        """A real token of the same client holding one other scope only."""
        other_scope = next(s for s in ALL_SCOPES if s != scope and s.split(":")[1] != scope.split(":")[1])
        if other_scope not in narrowed:
            narrowed[other_scope] = server.token(main_id, main_secret, scope=other_scope)
        return narrowed[other_scope]

    return Target(
        api_root=server.url,
        tokens={"valid": valid, "other": server.token(other_id, other_secret), "expired": _expired_copy(server.database_url, valid)},
        token_without_scope=token_without,
        session_body=payloads.session_request,
        assessment_body=payloads.assessment_request,
        sink_url=sink.url,
        sink=sink,
    )


def _expired_copy(database_url: str, token: str) -> str:
    """The same claims as ``token``, expired, signed with the server's own key."""
    import jwt
    from sqlalchemy import select

    from s2cvpn.storage.db import create_engine, session_factory
    from s2cvpn.storage.tables import SigningKeyRow

    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})

    async def key_pem() -> str:
        engine = create_engine(database_url)
        try:
            async with session_factory(engine)() as db:
                row = (await db.execute(select(SigningKeyRow).where(SigningKeyRow.kid == header["kid"]))).scalar_one()
                return row.private_pem
        finally:
            await engine.dispose()

    now = int(time.time())
    expired = {**claims, "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600, "jti": uuid.uuid4().hex}
    return jwt.encode(expired, asyncio.run(key_pem()), algorithm=header["alg"], headers={"kid": header["kid"]})
