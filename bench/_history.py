"""A database that has kept months of messages: what `--months N` gives the PostgreSQL benchmarks first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from storage.database import Database
from storage.message_months import month_of
from storage.models import CustomerCommunication
from storage.partitions import keep_month_partitions


async def history(database: Database, months: int) -> None:
    """A database that has kept `months` months of messages: one delivered message in each month before
    this one, moved into its own month partition on PostgreSQL (as the workers' retention pass does)."""
    now = datetime.now(UTC)
    rows = [
        {
            "channel": "sms",
            "provider": "twilio",
            "direction": "outbound",
            "source": "campaign",
            "source_ref": "history",
            "category": "marketing",
            "idempotency_key": f"campaign:history:{back}:sms",
            "to_address": f"+4917{back:09d}",
            "body": "An old message.",
            "status": "delivered",
            "attempts": 1,
            "created_at": month_of(now, -back) + timedelta(days=2),
        }
        for back in range(1, months + 1)
    ]
    if rows:
        async with database.engine.begin() as connection:
            await connection.execute(insert(CustomerCommunication), rows)
    await keep_month_partitions(database, now)
