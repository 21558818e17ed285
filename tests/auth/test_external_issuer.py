"""External issuer mode against a real OpenID provider: panva/oidc-provider on Node.js.

The provider (``oidc/server.js``) is started on a free loopback port with RSA keys the
test generates, so the test can rotate them the way an operator would: publish the new
key, switch signing to it, drop the old one. Needs node and ``oidc/install.sh`` (run by
CI; the fixture runs it too when ``node_modules`` is missing, and skips without node).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.support.skips import skip_or_fail_in_ci
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from sqlalchemy.ext.asyncio import async_sessionmaker

from s2cvpn import errors
from s2cvpn.api.deps import Principal
from s2cvpn.auth.tokens import TokenService
from s2cvpn.config import Settings

OIDC_DIR = Path(__file__).parent / "oidc"
READ, CREATE = "site-to-cloud-vpn:sessions:read", "site-to-cloud-vpn:sessions:create"
CLIENT = {"client_id": "ext-client", "client_secret": "ext-secret-0123456789abcdef0123456789", "scope": f"{READ} {CREATE}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rsa_jwk(kid: str) -> tuple[dict[str, Any], rsa.RSAPrivateKey]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(private, as_dict=True)
    jwk.update(kid=kid, use="sig", alg="RS256")
    return jwk, private


class OidcProvider:
    """One oidc-provider process on a fixed port; restartable with another key set."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.issuer = f"http://127.0.0.1:{port}"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, jwks: list[dict[str, Any]], sign_kid: str) -> None:
        self.stop()
        env = {**os.environ, "PORT": str(self.port), "OIDC_JWKS": json.dumps({"keys": jwks}), "SIGN_KID": sign_kid,
               "OIDC_CLIENTS": json.dumps([CLIENT]), "AUDIENCES": "urn:s2cvpn urn:other", "NODE_ENV": "test"}
        self._proc = subprocess.Popen(["node", "server.js"], cwd=OIDC_DIR, env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"oidc-provider exited: {self._proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("oidc-provider did not start within 20 s")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def token(self, *, scope: str = READ, resource: str | None = None) -> str:
        data = {"grant_type": "client_credentials", "scope": scope}
        if resource:
            data["resource"] = resource
        r = httpx.post(f"{self.issuer}/token", data=data, auth=(CLIENT["client_id"], CLIENT["client_secret"]))
        assert r.status_code == 200, r.text
        assert r.json()["token_type"] == "Bearer"
        return str(r.json()["access_token"])


@pytest.fixture(scope="module")
def node_ready() -> None:
    if shutil.which("node") is None:
        skip_or_fail_in_ci("node is not installed")
    if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        done = subprocess.run(["bash", str(OIDC_DIR / "install.sh")], capture_output=True, timeout=300)
        if done.returncode != 0:
            skip_or_fail_in_ci(f"oidc-provider could not be installed: {done.stderr.decode()[-500:]}")


@pytest.fixture
def providers(node_ready: None) -> Iterator[list[OidcProvider]]:
    started: list[OidcProvider] = []
    yield started
    for provider in started:
        provider.stop()


def _provider(providers: list[OidcProvider]) -> OidcProvider:
    provider = OidcProvider(_free_port())
    providers.append(provider)
    return provider


def _external_settings(base: Settings, provider: OidcProvider) -> Settings:
    return base.model_copy(update={"external_issuer": provider.issuer, "external_jwks_url": f"{provider.issuer}/jwks",
                                   "external_audience": "urn:s2cvpn"})


async def test_provider_tokens_are_accepted_and_foreign_ones_refused(
    providers: list[OidcProvider], settings: Settings, sessions: async_sessionmaker, real_clock: Any
) -> None:
    key_a, _ = _rsa_jwk("key-a")
    provider = _provider(providers)
    provider.start([key_a], "key-a")
    service = TokenService(_external_settings(settings, provider), sessions, real_clock)
    try:
        token = provider.token(scope=f"{READ} {CREATE}")
        assert jwt.get_unverified_header(token)["kid"] == "key-a"
        assert await service.verify(token) == Principal(client_id="ext-client", scopes=frozenset({READ, CREATE}))

        with pytest.raises(errors.Unauthenticated, match="audience"):
            await service.verify(provider.token(resource="urn:other"))

        impostor = _provider(providers)  # same keys, same client, another issuer URL
        impostor.start([key_a], "key-a")
        with pytest.raises(errors.Unauthenticated, match="issuer"):
            await service.verify(impostor.token())

        builtin_only = TokenService(settings, sessions, real_clock)  # external mode off
        with pytest.raises(errors.Unauthenticated, match="issuer"):
            await builtin_only.verify(token)
    finally:
        await service.aclose()


async def test_provider_key_rotation_is_followed(
    providers: list[OidcProvider], settings: Settings, sessions: async_sessionmaker, real_clock: Any
) -> None:
    key_a, private_a = _rsa_jwk("key-a")
    key_b, _ = _rsa_jwk("key-b")
    provider = _provider(providers)
    provider.start([key_a], "key-a")
    ext = _external_settings(settings, provider)
    service = TokenService(ext, sessions, real_clock)
    try:
        token_a = provider.token()
        assert (await service.verify(token_a)).client_id == "ext-client"

        provider.start([key_a, key_b], "key-b")  # the operator publishes key B and signs with it
        token_b = provider.token()
        assert jwt.get_unverified_header(token_b)["kid"] == "key-b"
        real_clock.advance(6)  # past the reload rate limit: the unknown kid triggers a JWKS fetch
        assert (await service.verify(token_b)).client_id == "ext-client"
        assert (await service.verify(token_a)).client_id == "ext-client"  # A is still published

        provider.start([key_b], "key-b")  # A is withdrawn
        now = int(real_clock.now().timestamp())
        forged_a = jwt.encode({"iss": ext.external_issuer, "aud": "urn:s2cvpn", "client_id": "ext-client",
                               "iat": now, "exp": now + 3600, "scope": READ}, private_a, algorithm="RS256",
                              headers={"kid": "key-a"})
        assert (await service.verify(forged_a)).client_id == "ext-client"  # cached until the JWKS is refetched
        real_clock.advance(601)  # the cached JWKS is past its maximum age
        with pytest.raises(errors.Unauthenticated, match="unknown key"):
            await service.verify(forged_a)
        fresh = provider.token()
        real_clock.advance(-601)  # back to the real time the provider stamped it with
        assert (await service.verify(fresh)).client_id == "ext-client"
    finally:
        await service.aclose()
