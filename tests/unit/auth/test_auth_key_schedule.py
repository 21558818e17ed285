"""Which signing key signs, and which are published, at a given time (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from s2cvpn.auth import keys

T0 = datetime(2026, 1, 1, tzinfo=UTC)
S = timedelta(seconds=1)


def test_new_key_has_thumbprint_kid_and_public_only_jwk() -> None:
    row = keys.new_key_row(T0, T0)
    jwk = row.public_jwk
    assert jwk["kid"] == row.kid and len(row.kid) == 43
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("EC", "P-256", "ES256", "sig")
    assert "d" not in jwk  # no private part
    assert row.private_pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert keys.new_key_row(T0, T0).kid != row.kid


def test_signing_key_switches_at_active_from_and_published_set_follows_expiry() -> None:
    old = keys.new_key_row(T0, T0)
    new = keys.new_key_row(T0 + 100 * S, T0 + 160 * S)
    old.retired_at, old.expires_at = T0 + 160 * S, T0 + 900 * S
    rows = [old, new]
    assert keys.signing_key_at(rows, T0 + 100 * S) is old
    assert keys.signing_key_at(rows, T0 + 159 * S) is old
    assert keys.signing_key_at(rows, T0 + 160 * S) is new
    assert keys.published_at(rows, T0 + 100 * S) == [old, new]  # new is public before it signs
    assert keys.published_at(rows, T0 + 899 * S) == [old, new]
    assert keys.published_at(rows, T0 + 900 * S) == [new]


def test_no_signing_key_before_the_first_is_active() -> None:
    pending = keys.new_key_row(T0, T0 + 60 * S)
    assert keys.signing_key_at([pending], T0) is None
    assert keys.signing_key_at([], T0) is None


def test_default_grace_covers_token_lifetime_plus_skew() -> None:
    assert keys.default_grace(3600) == timedelta(seconds=3600) + keys.CLOCK_SKEW
