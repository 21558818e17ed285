"""Issuing and verifying access tokens, and every kind of bad token being refused."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker

from s2cvpn import errors
from s2cvpn.auth import clients, keys
from s2cvpn.auth.tokens import LEEWAY_SECONDS, InvalidScope, TokenService
from s2cvpn.config import ALL_SCOPES, Settings
from s2cvpn.storage.tables import ClientRow

FakeClock = Any  # the conftest fixture: .now() and .advance(seconds)
READ, CREATE = "site-to-cloud-vpn:sessions:read", "site-to-cloud-vpn:sessions:create"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def _our_key(sessions: async_sessionmaker, clock: FakeClock) -> tuple[str, Any]:
    async with sessions() as db:
        row = await keys.current_signing_key(db, clock.now())
    assert row is not None
    return row.kid, serialization.load_pem_private_key(row.private_pem.encode(), None)


def _claims(settings: Settings, clock: FakeClock, client_id: str, **overrides: Any) -> dict[str, Any]:
    now = int(clock.now().timestamp())
    claims = {"iss": settings.issuer(), "sub": client_id, "aud": settings.token_audience, "iat": now, "nbf": now,
              "exp": now + 300, "jti": "j1", "scope": READ}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


async def _forge(sessions: async_sessionmaker, clock: FakeClock, claims: dict[str, Any]) -> str:
    """A token signed with our real key: only the claims are wrong."""
    kid, private = await _our_key(sessions, clock)
    return jwt.encode(claims, private, algorithm="ES256", headers={"kid": kid})


async def test_issue_and_verify_round_trip(tokens: TokenService, client: tuple[ClientRow, str], settings: Settings,
                                           clock: FakeClock) -> None:
    row = client[0]
    body = await tokens.issue(row, f"{READ} {CREATE} {READ}")
    assert body["token_type"] == "Bearer" and body["expires_in"] == 600
    assert body["scope"] == f"{READ} {CREATE}"
    header = jwt.get_unverified_header(body["access_token"])
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert header["alg"] == "ES256" and header["kid"]
    assert claims["iss"] == settings.issuer() and claims["sub"] == row.client_id and claims["aud"] == "s2cvpn"
    assert claims["exp"] - claims["iat"] == 600 and claims["nbf"] == claims["iat"] == int(clock.now().timestamp())
    assert len(claims["jti"]) >= 16
    principal = await tokens.verify(body["access_token"])
    assert principal.client_id == row.client_id and principal.scopes == {READ, CREATE}
    other = await tokens.issue(row, None)
    assert set(other["scope"].split()) == set(ALL_SCOPES)
    assert jwt.decode(other["access_token"], options={"verify_signature": False})["jti"] != claims["jti"]


async def test_scope_beyond_the_clients_grant_is_invalid_scope(
    tokens: TokenService, sessions: async_sessionmaker, clock: FakeClock
) -> None:
    async with sessions() as db:
        client_id, secret = await clients.create_client(db, name="ro", scopes=[READ], now=clock.now())
        row = await clients.authenticate_client(db, client_id, secret)
    with pytest.raises(InvalidScope) as refused:
        await tokens.issue(row, f"{READ} {CREATE}")
    assert refused.value.error == "invalid_scope" and CREATE in refused.value.description
    assert (await tokens.issue(row, "")) ["scope"] == READ  # empty means the default: everything granted


async def test_expired_token_is_refused_after_the_leeway(tokens: TokenService, client: tuple[ClientRow, str],
                                                         clock: FakeClock) -> None:
    token = (await tokens.issue(client[0], None))["access_token"]
    clock.advance(600 + LEEWAY_SECONDS - 1)
    assert (await tokens.verify(token)).client_id == client[0].client_id
    clock.advance(1)
    with pytest.raises(errors.Unauthenticated, match="expired"):
        await tokens.verify(token)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"nbf": "+120"}, "not yet valid"),
        ({"iat": "+120"}, "not yet valid"),
        ({"iss": "https://evil.example"}, "issuer"),
        ({"aud": "another-api"}, "audience"),
        ({"aud": None}, "aud"),
        ({"exp": None}, "exp"),
        ({"exp": "soon"}, "invalid|not a number"),
        ({"sub": None}, "subject"),
    ],
)
async def test_bad_claims_are_refused(tokens: TokenService, client: tuple[ClientRow, str], settings: Settings,
                                      sessions: async_sessionmaker, clock: FakeClock, overrides: dict[str, Any],
                                      reason: str) -> None:
    now = int(clock.now().timestamp())
    values = {k: (now + int(v[1:]) if isinstance(v, str) and v.startswith("+") else v) for k, v in overrides.items()}
    good = await _forge(sessions, clock, _claims(settings, clock, client[0].client_id))
    assert (await tokens.verify(good)).client_id == client[0].client_id  # the forging itself is sound
    bad = await _forge(sessions, clock, _claims(settings, clock, client[0].client_id, **values))
    with pytest.raises(errors.Unauthenticated, match=reason) as refused:
        await tokens.verify(bad)
    assert refused.value.status == 401 and "invalid_token" in refused.value.headers["WWW-Authenticate"]


async def test_alg_none_is_refused(tokens: TokenService, client: tuple[ClientRow, str], settings: Settings,
                                   sessions: async_sessionmaker, clock: FakeClock) -> None:
    kid, _ = await _our_key(sessions, clock)
    claims = _claims(settings, clock, client[0].client_id)
    for alg in ("none", "None", "NONE"):
        header = _b64(json.dumps({"alg": alg, "typ": "JWT", "kid": kid}).encode())
        token = f"{header}.{_b64(json.dumps(claims).encode())}."
        with pytest.raises(errors.Unauthenticated, match="algorithm|malformed"):
            await tokens.verify(token)


async def test_hs256_signed_with_the_public_key_is_refused(
    tokens: TokenService, client: tuple[ClientRow, str], settings: Settings, sessions: async_sessionmaker,
    clock: FakeClock
) -> None:
    kid, private = await _our_key(sessions, clock)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    async with sessions() as db:
        public_jwk_json = json.dumps((await keys.jwks(db, clock.now()))["keys"][0]).encode()
    claims = _claims(settings, clock, client[0].client_id)
    for secret in (public_pem, public_jwk_json):
        signing_input = f"{_b64(json.dumps({'alg': 'HS256', 'kid': kid}).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        with pytest.raises(errors.Unauthenticated, match="algorithm"):
            await tokens.verify(f"{signing_input}.{_b64(signature)}")


async def test_unknown_kid_and_foreign_key_are_refused(
    tokens: TokenService, client: tuple[ClientRow, str], settings: Settings, sessions: async_sessionmaker,
    clock: FakeClock
) -> None:
    claims = _claims(settings, clock, client[0].client_id)
    stranger = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(errors.Unauthenticated, match="unknown key"):
        await tokens.verify(jwt.encode(claims, stranger, algorithm="ES256", headers={"kid": "nope"}))
    with pytest.raises(errors.Unauthenticated, match="no key id"):
        await tokens.verify(jwt.encode(claims, stranger, algorithm="ES256"))
    kid, _ = await _our_key(sessions, clock)  # our kid, someone else's signature
    with pytest.raises(errors.Unauthenticated, match="signature"):
        await tokens.verify(jwt.encode(claims, stranger, algorithm="ES256", headers={"kid": kid}))
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(errors.Unauthenticated, match="algorithm"):
        await tokens.verify(jwt.encode(claims, rsa_key, algorithm="RS256", headers={"kid": kid}))


async def test_unknown_kid_reloads_keys_at_most_every_few_seconds(
    tokens: TokenService, client: tuple[ClientRow, str], settings: Settings, clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    loads = 0
    real = keys.load_keys

    async def counting(db: Any) -> Any:
        nonlocal loads
        loads += 1
        return await real(db)

    monkeypatch.setattr(keys, "load_keys", counting)
    forged = jwt.encode(_claims(settings, clock, client[0].client_id), ec.generate_private_key(ec.SECP256R1()),
                        algorithm="ES256", headers={"kid": "forged"})
    clock.advance(6)
    for _ in range(20):
        with pytest.raises(errors.Unauthenticated):
            await tokens.verify(forged)
    assert loads == 1


async def test_oversized_and_garbage_tokens_are_refused(tokens: TokenService, client: tuple[ClientRow, str],
                                                        settings: Settings, sessions: async_sessionmaker,
                                                        clock: FakeClock) -> None:
    big = await _forge(sessions, clock, _claims(settings, clock, client[0].client_id, pad="x" * 8192))
    with pytest.raises(errors.Unauthenticated, match="too large"):
        await tokens.verify(big)
    for garbage in ("", "abc", "a.b.c", "....", "eyJhbGciOiJFUzI1NiJ9.eyJ9.sig", "é.é.é", "\x00"):
        with pytest.raises(errors.Unauthenticated):
            await tokens.verify(garbage)


async def test_revocation_is_immediate_in_process(tokens: TokenService, client: tuple[ClientRow, str],
                                                  sessions: async_sessionmaker, clock: FakeClock) -> None:
    token = (await tokens.issue(client[0], None))["access_token"]
    await tokens.verify(token)  # caches "active"
    async with sessions() as db:
        assert await clients.revoke_client(db, client[0].client_id, clock.now())
    with pytest.raises(errors.Unauthenticated, match="revoked"):
        await tokens.verify(token)


async def test_revocation_by_another_process_takes_effect_within_seconds(
    tokens: TokenService, client: tuple[ClientRow, str], sessions: async_sessionmaker, clock: FakeClock
) -> None:
    token = (await tokens.issue(client[0], None))["access_token"]
    await tokens.verify(token)
    async with sessions() as db:  # as the CLI in another process would: no in-process signal
        await db.execute(update(ClientRow).values(revoked_at=clock.now()))
        await db.commit()
    clock.advance(3)
    with pytest.raises(errors.Unauthenticated, match="revoked"):
        await tokens.verify(token)


async def test_an_expired_revocation_answer_is_looked_up_once_for_all_requests_in_flight(
    tokens: TokenService, client: tuple[ClientRow, str], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = (await tokens.issue(client[0], None))["access_token"]
    await tokens.verify(token)
    lookups = 0
    real_get_client = clients.get_client

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal lookups
        lookups += 1
        await asyncio.sleep(0.05)  # a slow database: the other requests arrive meanwhile
        return await real_get_client(*args, **kwargs)

    monkeypatch.setattr(clients, "get_client", counted)
    clock.advance(3)  # the cached "active" has expired
    principals = await asyncio.gather(*(tokens.verify(token) for _ in range(50)))
    assert lookups == 1 and {p.client_id for p in principals} == {client[0].client_id}
    clock.advance(3)
    await tokens.verify(token)
    assert lookups == 2  # and the answer is not kept beyond its time


def _counting(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[int]:
    """Replace ``module.name`` (an async function) by one that counts its calls and is slow
    (a busy database: the other requests in flight arrive meanwhile)."""
    calls = [0]
    real = getattr(module, name)

    async def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        await asyncio.sleep(0.05)
        return await real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


async def test_a_token_whose_verification_expired_is_verified_once_for_all_requests_in_flight(
    tokens: TokenService, client: tuple[ClientRow, str], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = (await tokens.issue(client[0], None))["access_token"]
    await tokens.verify(token)
    decodes = [0]
    real_decode = tokens._decode

    def counted_decode(*args: Any) -> Any:
        decodes[0] += 1
        return real_decode(*args)

    monkeypatch.setattr(tokens, "_decode", counted_decode)
    loads = _counting(monkeypatch, keys, "load_keys")
    clock.advance(31)  # the verified token and the loaded keys have both expired
    principals = await asyncio.gather(*(tokens.verify(token) for _ in range(64)))
    assert {p.client_id for p in principals} == {client[0].client_id}
    assert (decodes[0], loads[0]) == (1, 1)
    await tokens.verify(token)
    assert decodes[0] == 1  # cached again


async def test_stale_keys_are_loaded_twice_at_most_for_all_tokens_in_flight(
    tokens: TokenService, client: tuple[ClientRow, str], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = [(await tokens.issue(client[0], None))["access_token"] for _ in range(20)]  # 20 tokens, none verified yet
    loads = _counting(monkeypatch, keys, "load_keys")
    clock.advance(31)  # the keys are stale: each verification wants them loaded
    principals = await asyncio.gather(*(tokens.verify(token) for token in issued))
    assert {p.client_id for p in principals} == {client[0].client_id}
    # the first one's load, and one that began after the others asked (the first one's may
    # have begun before a key they need existed); not one each
    assert loads[0] == 2


async def test_a_load_asked_for_while_another_runs_still_runs(
    tokens: TokenService, client: tuple[ClientRow, str], sessions: async_sessionmaker, settings: Settings,
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = (await tokens.issue(client[0], None))["access_token"]
    _counting(monkeypatch, keys, "load_keys")
    clock.advance(31)
    stale_reload = asyncio.ensure_future(tokens.verify(token))
    await asyncio.sleep(0.01)  # its load of the stale keys is under way
    async with sessions() as db:  # another process rotates the keys meanwhile
        new = await keys.rotate_keys(db, clock.now(), grace=keys.default_grace(settings.token_ttl_seconds))
    assert await tokens._reload_keys(force=True)
    await stale_reload
    assert new.kid in tokens._keys
