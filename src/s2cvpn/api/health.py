"""Liveness, readiness and Prometheus metrics, outside the versioned API root."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

router = APIRouter(tags=["Operations"], include_in_schema=False)


@router.get("/health/live")
async def live() -> Response:
    return JSONResponse({"status": "ok"})


@router.get("/health/ready")
async def ready(request: Request) -> Response:
    """Ready when the database answers and the network driver is healthy."""
    ctx = request.app.state.ctx
    checks: dict[str, str] = {}
    try:
        async with ctx.read_db() as db:
            await asyncio.wait_for(db.execute(text("SELECT 1")), timeout=2)
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        checks["database"] = f"unavailable: {type(exc).__name__}"
    health = await ctx.network_ready()
    checks["network"] = "ok" if health.ok else f"unavailable: {health.detail}"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)


@router.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
