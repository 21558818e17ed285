"""The CAMARA scenarios of operation assessConnectionFeasibility (site-to-cloud-vpn-assessConnectionFeasibility.feature)."""

import pytest
from pytest_bdd import scenarios

pytestmark = pytest.mark.usefixtures("target")  # runs each scenario once per target (local: per database backend)

scenarios("site-to-cloud-vpn-assessConnectionFeasibility.feature")
