"""The CAMARA scenarios of operation deleteSession (site-to-cloud-vpn-deleteSession.feature)."""

import pytest
from pytest_bdd import scenarios

pytestmark = pytest.mark.usefixtures("target")  # runs each scenario once per target (local: per database backend)

scenarios("site-to-cloud-vpn-deleteSession.feature")
