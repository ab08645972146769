"""Persistence: SQLAlchemy models, units of work and repositories, read models (queries/), rollup SQL, migrations."""
