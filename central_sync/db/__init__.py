"""PostgreSQL access: table definitions, engine helpers, the batch writer and Alembic migrations."""
