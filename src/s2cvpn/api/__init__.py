"""The HTTP layer: thin routers over the service layer."""
