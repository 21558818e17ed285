"""Driver name -> driver instance. The service builds its driver here, from settings."""

from __future__ import annotations

from pathlib import Path

from s2cvpn.drivers.base import NetworkDriver
from s2cvpn.network.inventory import Inventory

KNOWN = ("model", "netns")


def create_driver(
    name: str, inventory: Inventory, *, state_dir: Path | None = None, model_delay_seconds: float = 0.0, netns_prefix: str = "s2c"
) -> NetworkDriver:
    """Build the driver called ``name`` for ``inventory``; ValueError for an unknown name.

    ``state_dir`` is where a driver keeps files that must survive a restart of the
    service (the netns driver: FRR instances and probe targets; default /run/s2c).
    """
    if name == "model":
        from s2cvpn.drivers.model import ModelDriver

        return ModelDriver(inventory, delay_seconds=model_delay_seconds)
    if name == "netns":
        from s2cvpn.drivers.netns import NetnsDriver

        return NetnsDriver(inventory, state_dir=state_dir, prefix=netns_prefix)
    raise ValueError(f"unknown driver {name!r}; known drivers: {', '.join(KNOWN)}")
