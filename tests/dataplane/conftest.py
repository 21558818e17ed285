"""One lab (prefix ``s2ct``) for the whole data-plane suite, torn down and checked at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from s2cvpn.drivers.netns import NetnsDriver
from tests.dataplane import lab
from tests.drivers.contract import demo_inventory

PREFIX = "s2ct"


@pytest.fixture(scope="session")
def netns_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetnsDriver]:
    with lab.running_lab(demo_inventory(), PREFIX, tmp_path_factory.mktemp("dataplane")) as driver:
        yield driver


@pytest.fixture
def driver(netns_lab: NetnsDriver) -> Iterator[NetnsDriver]:
    """The lab's driver; every session a test applied is removed after it, pass or fail."""
    yield netns_lab
    for session_id in netns_lab.list_services():
        netns_lab.remove(session_id)
