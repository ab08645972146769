"""Persistence: SQLAlchemy models, unit of work, repositories, rollup SQL, Alembic migrations."""
