"""Persistence: one SQLAlchemy code path for SQLite (embedded default) and PostgreSQL."""
