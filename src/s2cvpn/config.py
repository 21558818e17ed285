"""Settings, read once from ``S2CVPN_*`` environment variables and passed down.

Nothing reads the environment elsewhere: ``create_app(settings)`` and the CLI build one
``Settings`` and hand it to whatever needs it.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

BUNDLED_INVENTORY = Path(__file__).parent / "network" / "data" / "demo.yaml"
ALL_SCOPES = (
    "site-to-cloud-vpn:sessions:create",
    "site-to-cloud-vpn:sessions:read",
    "site-to-cloud-vpn:sessions:update",
    "site-to-cloud-vpn:sessions:delete",
    "site-to-cloud-vpn:assessment:assess",
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="S2CVPN_", extra="ignore")

    database_url: str = "sqlite:///./s2cvpn.db"
    # PostgreSQL connections of the session hot path, per process (storage.driver). Few on
    # purpose, about twice the database server's cores: requests queue for them in the
    # process, cheaply, instead of as PostgreSQL backends contending for the same counter
    # rows (bench/HISTORY.md, tenth round). A distant database (slow round trips) wants more
    database_pool_size: int = Field(4, ge=1, le=100)
    inventory: Path = BUNDLED_INVENTORY
    public_url: str = "http://127.0.0.1:8080"
    api_prefix: str = "/site-to-cloud-vpn/v0.1"
    driver: str = "model"
    model_apply_delay_seconds: float = Field(0.0, ge=0)  # model driver: every apply/modify/remove takes this long
    netns_prefix: str = Field("s2c", pattern=r"^[a-z][a-z0-9]{1,3}$")  # netns driver: name prefix of every lab object

    retention_seconds: float = Field(360, ge=0)
    default_duration_hours: float = Field(4380, gt=0)
    max_duration_hours: float = Field(43800, gt=0)
    sink_allow_private: bool = False

    # built-in authorization server
    token_ttl_seconds: int = Field(3600, ge=1, le=86400)
    token_issuer: str = ""  # default: public_url
    token_audience: str = "s2cvpn"
    # external issuer (accepted in addition to the built-in one when set)
    external_issuer: str = ""
    external_jwks_url: str = ""
    external_audience: str = ""

    # background work
    worker_poll_seconds: float = Field(0.5, gt=0)
    notify_max_attempts: int = Field(12, ge=1)
    notify_backoff_seconds: float = Field(1.0, gt=0)
    notify_timeout_seconds: float = Field(5.0, gt=0)
    job_max_attempts: int = Field(6, ge=1)
    job_lease_seconds: float = Field(30.0, gt=0)
    reconcile_interval_seconds: float = Field(30.0, gt=0)
    measure_interval_seconds: float = Field(30.0, gt=0)  # how often AVAILABLE sessions are measured (actual* fields)

    # request limits
    max_body_bytes: int = 64 * 1024
    cors_origins: str = ""  # comma-separated browser origins allowed by CORS; empty = CORS off
    rate_limit_per_second: float = 0  # 0 = off
    max_active_sessions_per_client: int = 0  # 0 = unlimited

    # observability beyond /metrics: FastAPI's native OpenTelemetry through the global providers
    opentelemetry: bool = False

    def issuer(self) -> str:
        return self.token_issuer or self.public_url.rstrip("/")
