"""s2cvpn: the CAMARA Site-to-Cloud VPN API, implemented for operators."""

__version__ = "0.1.0"
