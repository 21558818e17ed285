"""Network drivers: one small interface (``base.NetworkDriver``), one subclass per backend."""
