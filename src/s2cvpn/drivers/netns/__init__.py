"""The netns driver: a real Linux data plane built from network namespaces."""

from s2cvpn.drivers.netns.driver import NetnsDriver

__all__ = ["NetnsDriver"]
