"""OAuth 2.0: the built-in authorization server, token verification, client registry."""
