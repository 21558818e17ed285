"""Access tokens: issued by the built-in server, verified for every API call.

One ``TokenService`` per process holds what verification needs in memory, so a request
costs no database round trip in the common case:

- built-in signing keys, reloaded every ``KEY_CACHE_SECONDS`` and on an unknown ``kid``
  (at most once per ``KEY_RELOAD_MIN_SECONDS``: a flood of forged kids cannot hammer
  the database);
- per-client revocation answers, kept ``REVOCATION_CACHE_SECONDS`` and dropped at once
  when a client is revoked in this process (``clients.revocation_epoch``);
- the external issuer's JWKS (fetched with httpx), refreshed on an unknown ``kid`` with
  the same rate limit, and at least every ``EXTERNAL_JWKS_MAX_AGE_SECONDS``, so the
  issuer's key rotation is followed.

Only asymmetric algorithms are accepted (ES256 for our own tokens), which closes the
``alg: none`` and HS256-with-the-public-key holes. Time claims are checked against the
injected clock, with ``LEEWAY_SECONDS`` for skew between machines. Tokens are never logged.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from sqlalchemy.ext.asyncio import async_sessionmaker

from s2cvpn import errors
from s2cvpn.auth.principal import Principal
from s2cvpn.auth import clients, keys
from s2cvpn.clock import Clock
from s2cvpn.config import Settings
from s2cvpn.storage.tables import ClientRow

log = logging.getLogger(__name__)

MAX_TOKEN_BYTES = 8 * 1024
LEEWAY_SECONDS = 30
VERIFIED_CACHE_SIZE = 10_000
VERIFIED_CACHE_SECONDS = 30
KEY_CACHE_SECONDS = 30
KEY_RELOAD_MIN_SECONDS = 5
REVOCATION_CACHE_SECONDS = 3
REVOCATION_CACHE_MAX = 10_000
EXTERNAL_JWKS_MAX_AGE_SECONDS = 600
EXTERNAL_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_INVALID_TOKEN = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


class OAuthError(Exception):
    """An RFC 6749 error (``error`` code, description, HTTP status) for the token endpoint."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


class InvalidScope(OAuthError):
    def __init__(self, description: str) -> None:
        super().__init__("invalid_scope", description, 400)


def _refuse(reason: str) -> errors.Unauthenticated:
    return errors.Unauthenticated(reason, headers=dict(_INVALID_TOKEN))


T = TypeVar("T")


class _SingleFlight(Generic[T]):
    """One computation per key at a time; who asks for a key while its computation runs
    awaits that one's answer. When a cached answer expires under load, every request in
    flight asks for it at once: without this, each would compute it (bench/HISTORY.md,
    fourteenth round)."""

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Future[T]] = {}

    async def run(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        running = self._running.get(key)
        if running is None:
            running = asyncio.ensure_future(compute())
            self._running[key] = running
            running.add_done_callback(lambda done: self._forget(key, done))
        return await asyncio.shield(running)  # a caller that goes away does not cancel the others' answer

    def _forget(self, key: Hashable, done: asyncio.Future[T]) -> None:
        self._running.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved, even when every caller waiting for it went away


@dataclass(frozen=True)
class _Key:
    kid: str
    active_from: datetime
    retired_at: datetime | None
    expires_at: datetime | None
    private: Any
    public: Any


class TokenService:
    """Issues and verifies access tokens; built once at start-up and shared."""

    def __init__(
        self,
        settings: Settings,
        session_factory: async_sessionmaker,
        clock: Clock,
        *,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = session_factory
        self.clock = clock
        self._http = http
        self._own_http = http is None
        self._keys: dict[str, _Key] = {}
        self._keys_loaded_at: datetime | None = None
        self._keys_lock = asyncio.Lock()
        # loads of the keys begun, and the number of the last one that finished
        self._key_loads_begun = 0
        self._key_load_finished = 0
        self._client_cache: dict[str, tuple[bool, datetime, int]] = {}
        self._client_lookups: _SingleFlight[bool] = _SingleFlight()
        # token -> (caller, until, built-in issuer?), insertion ordered: the oldest goes first
        self._verified: dict[str, tuple[Principal, float, bool]] = {}
        self._verifications: _SingleFlight[tuple[Principal, float, bool]] = _SingleFlight()
        self._ext_keys: dict[str, dict[str, Any]] = {}
        self._ext_loaded_at: datetime | None = None
        self._ext_lock = asyncio.Lock()

    @property
    def external_enabled(self) -> bool:
        s = self.settings
        return bool(s.external_issuer and s.external_jwks_url and s.external_audience)

    async def start(self) -> None:
        """Create the first signing key if needed and warm the cache (call in the lifespan)."""
        async with self.sessions() as db:
            await keys.ensure_signing_key(db, self.clock.now())
        await self._reload_keys(force=True)

    async def aclose(self) -> None:
        if self._http is not None and self._own_http:
            await self._http.aclose()
            self._http = None

    # ---- issuing -------------------------------------------------------------------

    async def issue(self, client: ClientRow, requested_scopes: str | None) -> dict[str, Any]:
        """A signed access token for an authenticated client (RFC 6749 section 5.1 body)."""
        if client.revoked_at is not None:
            raise errors.Unauthenticated("client revoked")
        allowed = client.scopes.split()
        requested = list(dict.fromkeys(requested_scopes.split())) if requested_scopes else []
        if not requested:
            requested = allowed
        extra = [s for s in requested if s not in allowed]
        if extra:
            raise InvalidScope(f"scope not granted to this client: {' '.join(extra)}")
        now = self.clock.now()
        key = await self._signing_key(now)
        ttl = self.settings.token_ttl_seconds
        issued = int(now.timestamp())
        claims = {
            "iss": self.settings.issuer(),
            "sub": client.client_id,
            "client_id": client.client_id,
            "aud": self.settings.token_audience,
            "iat": issued,
            "nbf": issued,
            "exp": issued + ttl,
            "jti": uuid.uuid4().hex,
            "scope": " ".join(requested),
        }
        token = jwt.encode(claims, key.private, algorithm=keys.ALGORITHM, headers={"kid": key.kid, "typ": "at+jwt"})
        return {"access_token": token, "token_type": "Bearer", "expires_in": ttl, "scope": claims["scope"]}

    async def _signing_key(self, now: datetime) -> _Key:
        if self._keys_stale(now):
            await self._reload_keys(force=True)
        key = self._signing_key_cached(now)
        if key is None:
            await self._reload_keys(force=True)
            key = self._signing_key_cached(now)
        if key is None:
            async with self.sessions() as db:
                await keys.ensure_signing_key(db, now)
            await self._reload_keys(force=True)
            key = self._signing_key_cached(now)
        if key is None:
            raise errors.Unavailable("no active signing key yet")
        return key

    def _signing_key_cached(self, now: datetime) -> _Key | None:
        live = [
            k for k in self._keys.values() if k.active_from <= now and (k.retired_at is None or k.retired_at > now)
        ]
        return max(live, key=lambda k: (k.active_from, k.kid), default=None)

    def _keys_stale(self, now: datetime) -> bool:
        loaded = self._keys_loaded_at
        return loaded is None or now - loaded >= timedelta(seconds=KEY_CACHE_SECONDS)

    async def _reload_keys(self, *, force: bool) -> bool:
        """Reload keys from the database; unless forced, at most once per rate-limit period.
        Not at all when a load that began after the call finished while it waited for the
        lock: that load is as fresh as its own would be."""
        asked_after = self._key_loads_begun
        async with self._keys_lock:
            if self._key_load_finished > asked_after:
                return False
            now = self.clock.now()
            loaded = self._keys_loaded_at
            if not force and loaded is not None and now - loaded < timedelta(seconds=KEY_RELOAD_MIN_SECONDS):
                return False
            self._key_loads_begun += 1
            load = self._key_loads_begun
            async with self.sessions() as db:
                rows = await keys.load_keys(db)
            fresh: dict[str, _Key] = {}
            for row in rows:
                known = self._keys.get(row.kid)
                private = known.private if known else serialization.load_pem_private_key(row.private_pem.encode(), None)
                fresh[row.kid] = _Key(row.kid, row.active_from, row.retired_at, row.expires_at, private, private.public_key())
            self._keys = fresh
            self._keys_loaded_at = now
            self._key_load_finished = load
            return True

    # ---- verifying -----------------------------------------------------------------

    async def verify(self, token: str) -> Principal:
        """The caller behind a bearer token; ``errors.Unauthenticated`` for any bad token.

        A token already verified is not checked again for up to ``VERIFIED_CACHE_SECONDS``
        (signature checks are the costliest part of a request); a withdrawn key or an expired
        token is noticed after that at the latest, and the client's revocation every time.
        """
        if len(token) > MAX_TOKEN_BYTES:
            raise _refuse("token too large")
        now = self.clock.now()
        known = self._verified.get(token)
        if known is not None and known[1] > now.timestamp():
            principal, _until, builtin = known
            if builtin and not await self._client_active(principal.client_id, now):
                raise _refuse("client revoked")
            return principal
        # the requests in flight with this token when its entry expired verify it once
        principal, _until, _builtin = await self._verifications.run(token, lambda: self._verify_and_remember(token, now))
        return principal

    async def _verify_and_remember(self, token: str, now: datetime) -> tuple[Principal, float, bool]:
        principal, expires, builtin = await self._verify_uncached(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.pop(next(iter(self._verified)))
        until = min(expires + LEEWAY_SECONDS, now.timestamp() + VERIFIED_CACHE_SECONDS)
        self._verified[token] = (principal, until, builtin)
        return principal, until, builtin

    async def _verify_uncached(self, token: str) -> tuple[Principal, float, bool]:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise _refuse("malformed token") from exc
        issuer = unverified.get("iss")
        if issuer == self.settings.issuer():
            return await self._verify_builtin(token, header), float(unverified["exp"]), True
        if self.external_enabled and issuer == self.settings.external_issuer:
            return await self._verify_external(token, header), float(unverified["exp"]), False
        raise _refuse("token issuer not accepted")

    async def _verify_builtin(self, token: str, header: dict[str, Any]) -> Principal:
        if header.get("alg") != keys.ALGORITHM:
            raise _refuse("token signing algorithm not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise _refuse("token has no key id")
        now = self.clock.now()
        if self._keys_stale(now) or kid not in self._keys:
            await self._reload_keys(force=self._keys_stale(now))
        key = self._keys.get(kid)
        if key is None or (key.expires_at is not None and key.expires_at <= now):
            raise _refuse("token signed by an unknown key")
        claims = self._decode(
            token, key.public, keys.ALGORITHM, self.settings.token_audience, self.settings.issuer(), now
        )
        client_id = claims.get("sub")
        if not isinstance(client_id, str) or not client_id:
            raise _refuse("token has no subject")
        if not await self._client_active(client_id, now):
            raise _refuse("client revoked")
        return Principal(client_id=client_id, scopes=frozenset(_scopes(claims)))

    async def _verify_external(self, token: str, header: dict[str, Any]) -> Principal:
        alg = header.get("alg")
        if alg not in EXTERNAL_ALGORITHMS:
            raise _refuse("token signing algorithm not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise _refuse("token has no key id")
        now = self.clock.now()
        jwk = await self._external_jwk(kid, now)
        if jwk is None:
            raise _refuse("token signed by an unknown key")
        if jwk.get("alg") not in (None, alg) or jwk.get("use") not in (None, "sig"):
            raise _refuse("token signing algorithm does not match its key")
        try:
            public = jwt.PyJWK(jwk, algorithm=alg).key
        except (jwt.PyJWTError, ValueError, KeyError, TypeError) as exc:
            raise _refuse("token signing algorithm does not match its key") from exc
        s = self.settings
        claims = self._decode(token, public, alg, s.external_audience, s.external_issuer, now)
        client_id = next(
            (v for name in ("client_id", "azp", "sub") if isinstance(v := claims.get(name), str) and v), None
        )
        if client_id is None:
            raise _refuse("token names no client")
        return Principal(client_id=client_id, scopes=frozenset(_scopes(claims)))

    def _decode(self, token: str, key: Any, alg: str, audience: str, issuer: str, now: datetime) -> dict[str, Any]:
        """Signature, ``aud``, ``iss`` by PyJWT; time claims here, against the injected clock."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=audience,
                issuer=issuer,
                options={"require": ["exp", "iss", "aud"], "verify_exp": False, "verify_nbf": False,
                         "verify_iat": False},
            )
        except jwt.InvalidAudienceError as exc:
            raise _refuse("token audience not accepted") from exc
        except jwt.InvalidIssuerError as exc:
            raise _refuse("token issuer not accepted") from exc
        except jwt.InvalidSignatureError as exc:
            raise _refuse("token signature invalid") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise _refuse(f"token lacks the {exc.claim} claim") from exc
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise _refuse("token invalid") from exc
        at = now.timestamp()
        for name in ("exp", "iat", "nbf"):
            if name in claims and (isinstance(claims[name], bool) or not isinstance(claims[name], int | float)):
                raise _refuse(f"token {name} claim is not a number")
        if claims["exp"] <= at - LEEWAY_SECONDS:
            raise _refuse("token expired")
        if claims.get("nbf", 0) > at + LEEWAY_SECONDS or claims.get("iat", 0) > at + LEEWAY_SECONDS:
            raise _refuse("token not yet valid")
        return claims

    async def _client_active(self, client_id: str, now: datetime) -> bool:
        epoch = clients.revocation_epoch()
        cached = self._client_cache.get(client_id)
        if cached is not None:
            active, checked_at, cached_epoch = cached
            if cached_epoch == epoch and now - checked_at < timedelta(seconds=REVOCATION_CACHE_SECONDS):
                return active
        return await self._client_lookups.run(client_id, lambda: self._look_up_client(client_id, now, epoch))

    async def _look_up_client(self, client_id: str, now: datetime, epoch: int) -> bool:
        async with self.sessions() as db:
            row = await clients.get_client(db, client_id)
        active = row is not None and row.revoked_at is None
        if len(self._client_cache) >= REVOCATION_CACHE_MAX:
            self._client_cache.clear()
        self._client_cache[client_id] = (active, now, epoch)
        return active

    async def _external_jwk(self, kid: str, now: datetime) -> dict[str, Any] | None:
        loaded = self._ext_loaded_at
        too_old = loaded is None or now - loaded >= timedelta(seconds=EXTERNAL_JWKS_MAX_AGE_SECONDS)
        if too_old or kid not in self._ext_keys:
            await self._reload_external(force=too_old)
        return self._ext_keys.get(kid)

    async def _reload_external(self, *, force: bool) -> None:
        async with self._ext_lock:
            now = self.clock.now()
            loaded = self._ext_loaded_at
            if not force and loaded is not None and now - loaded < timedelta(seconds=KEY_RELOAD_MIN_SECONDS):
                return
            if self._http is None:
                self._http = httpx.AsyncClient(timeout=5.0, follow_redirects=False)
            try:
                response = await self._http.get(self.settings.external_jwks_url)
                response.raise_for_status()
                found = {k["kid"]: k for k in response.json()["keys"] if isinstance(k, dict) and "kid" in k}
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                log.warning("external JWKS fetch failed: %s", type(exc).__name__)
                if not self._ext_keys:
                    raise errors.Unavailable("the external token issuer's keys cannot be fetched") from exc
                return  # keep the keys we have; try again after the rate-limit period
            finally:
                self._ext_loaded_at = now
            self._ext_keys = found


def _scopes(claims: dict[str, Any]) -> list[str]:
    """``scope`` (space-separated, RFC 9068) or ``scp`` (string or list, Azure/Okta style)."""
    value = claims.get("scope", claims.get("scp", ""))
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [s for s in value if isinstance(s, str)]
    return []
