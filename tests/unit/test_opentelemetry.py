"""``S2CVPN_OPENTELEMETRY``: FastAPI's native OpenTelemetry spans when on, no lookup when off."""

from __future__ import annotations

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from s2cvpn.app import create_app
from s2cvpn.config import Settings


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    """Spans of the process-wide tracer provider (set once per process, as an SDK does)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.mark.parametrize("enabled", [False, True])
async def test_spans_only_when_enabled(spans: InMemorySpanExporter, enabled: bool) -> None:
    spans.clear()
    app = create_app(Settings(database_url="sqlite:///unused.db", opentelemetry=enabled))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        assert (await client.get("/health/live")).status_code == 200
    routes = [(span.attributes or {}).get("http.route") for span in spans.get_finished_spans()]
    if enabled:
        assert "/health/live" in routes
    else:
        assert routes == []
