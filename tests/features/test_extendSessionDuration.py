"""The CAMARA scenarios of operation extendSessionDuration (site-to-cloud-vpn-extendSessionDuration.feature)."""

import pytest
from pytest_bdd import scenarios

pytestmark = pytest.mark.usefixtures("target")  # runs each scenario once per target (local: per database backend)

scenarios("site-to-cloud-vpn-extendSessionDuration.feature")
