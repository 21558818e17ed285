"""FastAPI dependencies shared by the routers: database session, caller, scopes, ownership."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True)
class Principal:
    """Who is calling: the OAuth client id (``sub``) and the scopes its token carries."""

    client_id: str
    scopes: frozenset[str]


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as db:
        yield db
