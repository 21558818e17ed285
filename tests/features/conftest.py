"""Fixtures of the CAMARA feature files: the target (this project's server, or any
implementation named by S2CVPN_FEATURES_* variables; see steps/target.py) and the steps."""

from __future__ import annotations

import pytest

from tests.features.steps import camara_steps, target as targets

if targets.EXTERNAL:

    @pytest.fixture(scope="session")
    def database_url() -> str:  # overrides the backend matrix: no local server is started
        return ""


@pytest.fixture(scope="session")
def _local_targets() -> dict[str, targets.Target]:
    return {}


@pytest.fixture
def target(request: pytest.FixtureRequest, database_url: str, _local_targets: dict[str, targets.Target]) -> targets.Target:
    if targets.EXTERNAL:
        return targets.external_target()
    if database_url not in _local_targets:
        server = request.getfixturevalue("server")
        _local_targets[database_url] = targets.local_target(server, request.getfixturevalue("sink"))
    return _local_targets[database_url]


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(camara_steps, "s2cvpn-camara-steps")



def pytest_bdd_apply_tag(tag: str, function: object) -> bool:
    """Scenario tags are CAMARA test ids (with dots and dashes), not pytest marks."""
    return True
