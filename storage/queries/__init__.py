"""Read models: typed queries per noun that pages, commands and the CLI call instead of writing SQL.

Each module answers the questions one noun is asked (staff, customers, messages, …) and returns plain
values, never ORM rows, so the edges (`api/`, `bot/`) need neither SQLAlchemy nor `storage.models`.
Writes do not live here: they go through the use-cases under `domain/` and their units of work.
"""
