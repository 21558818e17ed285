"""Pure domain values and rules of a VPN session (no I/O, no frameworks)."""
