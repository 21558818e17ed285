"""Secret hashing and scope validation of the client registry (pure, no I/O)."""

from __future__ import annotations

import pytest

from s2cvpn.auth import clients
from s2cvpn.config import ALL_SCOPES


def test_hash_uses_production_cost_and_per_client_salt() -> None:
    first = clients.hash_secret("s3cret")
    second = clients.hash_secret("s3cret")
    scheme, n, r, p, salt, digest = first.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", 2**15, 8, 1)
    assert first != second  # different salts, so equal secrets do not show
    assert salt != second.split("$")[4]
    assert "s3cret" not in first


def test_verify_accepts_only_the_right_secret() -> None:
    encoded = clients.hash_secret("right")
    assert clients.verify_secret("right", encoded)
    assert not clients.verify_secret("wrong", encoded)
    assert not clients.verify_secret("Right", encoded)


def test_verify_takes_cost_from_the_stored_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    encoded = clients.hash_secret("x")
    monkeypatch.setattr(clients, "SCRYPT_N", 2**10)  # raising/lowering the default keeps old hashes valid
    assert clients.verify_secret("x", encoded)
    assert clients.hash_secret("x").split("$")[1] == str(2**10)


@pytest.mark.parametrize("encoded", ["", "plain", "bcrypt$1$2$3$aa$bb", "scrypt$x$8$1$aa$bb", "scrypt$1024$8$1$!!$bb"])
def test_verify_refuses_malformed_hashes(encoded: str) -> None:
    assert clients.verify_secret("x", encoded) is False


def test_unknown_scope_names_are_refused() -> None:
    with pytest.raises(ValueError, match="site-to-cloud-vpn:sessions:admin"):
        clients.normalize_scopes(["site-to-cloud-vpn:sessions:read", "site-to-cloud-vpn:sessions:admin"])


def test_scopes_are_deduplicated_in_order() -> None:
    assert clients.normalize_scopes([ALL_SCOPES[1], ALL_SCOPES[0], ALL_SCOPES[1]]) == [ALL_SCOPES[1], ALL_SCOPES[0]]
