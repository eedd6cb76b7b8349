"""Alembic migrations of the central database; run them with `central-sync migrate` (no alembic.ini needed)."""
