"""Who is calling, as every layer sees it once a token is verified."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """The OAuth client id (``sub``) and the scopes its token carries."""

    client_id: str
    scopes: frozenset[str]
