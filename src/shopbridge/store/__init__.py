"""Persistence: SQLAlchemy tables, engine set-up, Alembic migrations, encrypted secrets."""
