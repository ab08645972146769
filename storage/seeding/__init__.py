"""Realistic, deterministic demo data for Northwind Clinics, streamed in bounded memory."""

from storage.seeding.checksums import content_checksums
from storage.seeding.plan import DatabaseNotEmpty, SeedPlan, SeedSummary
from storage.seeding.run import SEEDED_TABLES, seed_database

__all__ = [
    "SEEDED_TABLES",
    "DatabaseNotEmpty",
    "SeedPlan",
    "SeedSummary",
    "content_checksums",
    "seed_database",
]
