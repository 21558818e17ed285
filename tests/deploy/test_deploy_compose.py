"""deploy/compose.yaml and deploy/.env.example, checked without docker.

The file is validated against the Compose Specification JSON schema (vendored by the
``check-jsonschema`` package, so offline), then for the topology the README promises:
PostgreSQL 15 with a health check, a one-shot ``migrate``, two API replicas without the
embedded worker, one worker, start order by depends_on conditions, and an environment that
``s2cvpn.config.Settings`` accepts once ``.env.example`` is filled in.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest
import yaml

from .artifacts import DEPLOY, compose_variables, interpolate, load_compose, load_env_example

S2CVPN_SERVICES = ("migrate", "api", "worker")


@pytest.fixture
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture
def resolved() -> dict[str, Any]:
    """The compose file as docker compose sees it with deploy/.env copied from the example."""
    return interpolate(load_compose(), load_env_example())


def test_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    pytest.importorskip("check_jsonschema")
    spec = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    schema = json.loads(spec.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    for doc in (compose, interpolate(compose, load_env_example())):
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_schema_check_catches_a_mistake(compose: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    pytest.importorskip("check_jsonschema")
    spec = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    broken = json.loads(json.dumps(compose))
    broken["services"]["api"]["depends_on"]["migrate"]["condition"] = "service_finished"
    assert list(jsonschema.Draft202012Validator(json.loads(spec.read_text())).iter_errors(broken))


def test_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"postgres", "migrate", "api", "worker"}


def test_postgres_15_with_healthcheck(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert postgres["image"].split(":")[1].split(".")[0] == "15"
    test = postgres["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL" and "pg_isready" in test[1]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])


def test_commands(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    api = services["api"]["command"]
    assert api[0] == "serve" and "--no-worker" in api
    assert api[api.index("--host") + 1] == "0.0.0.0" and api[api.index("--port") + 1] == "8080"
    assert services["api"]["deploy"]["replicas"] == 2
    worker = services["worker"]["command"]
    assert worker[0] == "worker" and worker[worker.index("--metrics-port") + 1] == "9090"
    assert "ports" not in services["worker"], "the worker's metrics are for the compose network only"
    assert services["worker"].get("deploy", {}).get("replicas", 1) == 1


def test_all_s2cvpn_services_build_the_same_image(compose: dict[str, Any]) -> None:
    images = {compose["services"][s]["image"] for s in S2CVPN_SERVICES}
    builds = [compose["services"][s]["build"] for s in S2CVPN_SERVICES]
    assert len(images) == 1
    assert all(b == {"context": "..", "dockerfile": "Dockerfile"} for b in builds)
    assert (DEPLOY / ".." / "Dockerfile").is_file()


def test_start_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("api", "worker"):
        assert services[name]["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }, name


def test_healthchecks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    api = services["api"]["healthcheck"]["test"]
    assert api[:2] == ["CMD", "python"] and "/health/ready" in api[-1] and "127.0.0.1:8080" in api[-1]
    # no HTTP server in these, so the image's HEALTHCHECK must be switched off
    assert services["worker"]["healthcheck"] == {"disable": True}
    assert services["migrate"]["healthcheck"] == {"disable": True}


def test_hardening(compose: dict[str, Any]) -> None:
    for name in S2CVPN_SERVICES:
        service = compose["services"][name]
        assert service["read_only"] is True and "/tmp" in service["tmpfs"], name
        assert "user" not in service, "the image's fixed non-root user applies"
        assert "privileged" not in service and "cap_add" not in service


def test_every_variable_is_documented_in_env_example() -> None:
    used = compose_variables((DEPLOY / "compose.yaml").read_text())
    documented = set(load_env_example())
    assert used - documented == set(), "used in compose.yaml but missing from .env.example"
    assert documented - used == set(), "in .env.example but unused by compose.yaml"


def test_password_is_required(compose: dict[str, Any]) -> None:
    env = load_env_example()
    del env["POSTGRES_PASSWORD"]
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        interpolate(compose, env)


def test_database_url_points_at_the_postgres_service(resolved: dict[str, Any]) -> None:
    env = load_env_example()
    url = resolved["services"]["api"]["environment"]["S2CVPN_DATABASE_URL"]
    assert url == f"postgresql://{env['POSTGRES_USER']}:{env['POSTGRES_PASSWORD']}@postgres:5432/{env['POSTGRES_DB']}"
    postgres = resolved["services"]["postgres"]["environment"]
    assert postgres == {k: env[k] for k in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB")}


def test_inventory_mount(resolved: dict[str, Any]) -> None:
    for name in S2CVPN_SERVICES:
        service = resolved["services"][name]
        target = service["environment"]["S2CVPN_INVENTORY"]
        mounts = [v for v in service["volumes"] if v["target"] == target]
        assert len(mounts) == 1 and mounts[0]["read_only"] is True
        assert (DEPLOY / mounts[0]["source"]).is_file(), mounts[0]["source"]


def test_settings_accept_the_environment(resolved: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    config = pytest.importorskip("s2cvpn.config")
    fields = set(config.Settings.model_fields)
    for name in S2CVPN_SERVICES:
        environment = resolved["services"][name]["environment"]
        unknown = {k for k in environment if k.removeprefix("S2CVPN_").lower() not in fields}
        assert not unknown, f"{name}: not settings: {unknown}"
    for key in list(__import__("os").environ):
        if key.startswith("S2CVPN_"):
            monkeypatch.delenv(key)
    for key, value in resolved["services"]["api"]["environment"].items():
        monkeypatch.setenv(key, str(value))
    settings = config.Settings()
    assert settings.database_url.startswith("postgresql://")
    assert settings.driver == "model" and settings.sink_allow_private is False
    assert str(settings.inventory) == "/etc/s2cvpn/inventory.yaml"


def test_env_example_parses_as_dotenv() -> None:
    # KEY=VALUE lines only, no quotes or spaces that compose and shells would read differently
    for key, value in load_env_example().items():
        assert key.isupper() and " " not in value and not value.startswith(("'", '"')), key


def test_compose_yaml_is_plain_yaml() -> None:
    # anchors/merge keys resolve and no tabs sneak in
    text = (DEPLOY / "compose.yaml").read_text()
    assert "\t" not in text
    assert yaml.safe_load(text)["name"] == "s2cvpn"
