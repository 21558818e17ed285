"""External issuer mode with a stubbed JWKS endpoint (no Node.js): claim mapping and failures."""

from __future__ import annotations

import hashlib
import hmac
import base64
import json
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from sqlalchemy.ext.asyncio import async_sessionmaker

from s2cvpn import errors
from s2cvpn.auth.tokens import TokenService
from s2cvpn.config import Settings

ISSUER, JWKS_URL, AUDIENCE = "https://idp.example/realms/ops", "https://idp.example/realms/ops/certs", "s2cvpn-api"


class Idp:
    """A JWKS endpoint behind httpx.MockTransport, counting fetches; ``down`` makes it fail."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.jwk: dict[str, Any] = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True) | {"kid": "k1"}
        self.fetches = 0
        self.down = False

    def handler(self, request: httpx.Request) -> httpx.Response:
        assert str(request.url) == JWKS_URL
        self.fetches += 1
        if self.down:
            return httpx.Response(503)
        return httpx.Response(200, json={"keys": [self.jwk]})

    def token(self, clock: Any, kid: str = "k1", **claims: Any) -> str:
        now = int(clock.now().timestamp())
        body = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300} | claims
        return jwt.encode({k: v for k, v in body.items() if v is not None}, self.private, algorithm="ES256",
                          headers={"kid": kid})


@pytest.fixture
def idp() -> Idp:
    return Idp()


@pytest.fixture
async def service(settings: Settings, sessions: async_sessionmaker, clock: Any, idp: Idp) -> TokenService:
    ext = settings.model_copy(update={"external_issuer": ISSUER, "external_jwks_url": JWKS_URL,
                                      "external_audience": AUDIENCE})
    return TokenService(ext, sessions, clock, http=httpx.AsyncClient(transport=httpx.MockTransport(idp.handler)))


@pytest.mark.parametrize(
    ("claims", "client_id", "scopes"),
    [
        ({"sub": "svc-uuid", "azp": "ops-portal", "client_id": "ops-portal-cid", "scope": "a b"}, "ops-portal-cid", {"a", "b"}),
        ({"sub": "svc-uuid", "azp": "ops-portal", "scp": ["a", "c"]}, "ops-portal", {"a", "c"}),
        ({"sub": "svc-uuid", "scp": "c"}, "svc-uuid", {"c"}),
        ({"sub": "svc-uuid"}, "svc-uuid", set()),
    ],
)
async def test_claims_map_to_the_principal(service: TokenService, idp: Idp, clock: Any, claims: dict[str, Any],
                                           client_id: str, scopes: set[str]) -> None:
    principal = await service.verify(idp.token(clock, **claims))
    assert principal.client_id == client_id and principal.scopes == scopes


async def test_token_without_any_client_claim_is_refused(service: TokenService, idp: Idp, clock: Any) -> None:
    with pytest.raises(errors.Unauthenticated, match="no client"):
        await service.verify(idp.token(clock, scope="a"))


async def test_jwks_is_cached_and_refetched_only_on_unknown_kid_with_a_rate_limit(
    service: TokenService, idp: Idp, clock: Any
) -> None:
    for _ in range(3):
        await service.verify(idp.token(clock, sub="x"))
    assert idp.fetches == 1
    for _ in range(5):
        with pytest.raises(errors.Unauthenticated, match="unknown key"):
            await service.verify(idp.token(clock, kid="k2", sub="x"))
    assert idp.fetches == 1  # within the rate-limit period: no refetch
    clock.advance(6)
    with pytest.raises(errors.Unauthenticated, match="unknown key"):
        await service.verify(idp.token(clock, kid="k2", sub="x"))
    assert idp.fetches == 2


async def test_unreachable_jwks_is_503_until_keys_are_known(service: TokenService, idp: Idp, clock: Any) -> None:
    idp.down = True
    with pytest.raises(errors.Unavailable):
        await service.verify(idp.token(clock, sub="x"))
    idp.down = False
    clock.advance(6)
    assert (await service.verify(idp.token(clock, sub="x"))).client_id == "x"
    idp.down = True
    clock.advance(601)  # a failed periodic refresh keeps the keys already known
    assert (await service.verify(idp.token(clock, sub="x"))).client_id == "x"


async def test_external_hs256_and_wrong_key_type_are_refused(service: TokenService, idp: Idp, clock: Any) -> None:
    now = int(clock.now().timestamp())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300, "sub": "x"}
    segments = [base64.urlsafe_b64encode(json.dumps(p).encode()).rstrip(b"=").decode()
                for p in ({"alg": "HS256", "kid": "k1"}, claims)]
    signing_input = ".".join(segments)
    mac = hmac.new(json.dumps(idp.jwk).encode(), signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(errors.Unauthenticated, match="algorithm"):
        await service.verify(signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode())
    from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: PLC0415

    rsa_token = jwt.encode(claims, rsa.generate_private_key(public_exponent=65537, key_size=2048),
                           algorithm="RS256", headers={"kid": "k1"})  # kid of an EC key
    with pytest.raises(errors.Unauthenticated, match="does not match"):
        await service.verify(rsa_token)
