"""the channel pages read kept figures: SMS segments by encoding, and an index of failed messages

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 06:00:00

The SMS page showed a month of segments and encodings by counting raw messages on every request (1.3 s at
2.5M messages). communication_analytics now keeps them with "sent", counted once like the other figures.
Existing rows are filled in from the messages already sent, on the business day each was sent
(SWITCHBOARD_BUSINESS_TIMEZONE, as `switchboard analytics verify` counts them), so no drift appears.

Each channel page lists its latest failures; without an index that meant sorting every failed message of
every channel (200 ms at 2.5M messages). A partial index on the failed ones, by channel and moment, reads 20.

The customer page counts distinct customers with paid orders (active, returning, churned). The orders
indexes by time and by customer now also hold status and customer, so those counts read only the index.
"""

import os
from collections import Counter
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FIGURES = ("gsm7_sent", "gsm7_segments", "gsm7_long", "ucs2_sent", "ucs2_segments", "ucs2_long")
PREFIX = {"GSM-7": "gsm7", "UCS-2": "ucs2"}
FAILED = "status IN ('failed', 'undelivered', 'dead')"


def upgrade() -> None:
    with op.batch_alter_table("communication_analytics", schema=None) as batch_op:
        for name in FIGURES:
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
    _backfill()
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_created_at")
        batch_op.drop_index("ix_orders_customer_created")
        batch_op.create_index("ix_orders_created_status", ["created_at", "status", "customer_id"])
        batch_op.create_index("ix_orders_customer_history", ["customer_id", "created_at", "status"])
    op.create_index(
        "ix_customer_communications_failures",
        "customer_communications",
        ["channel", sa.text("coalesce(failed_at, created_at)")],
        sqlite_where=sa.text(FAILED),
        postgresql_where=sa.text(FAILED),
    )


def _business_timezone() -> str:
    """SWITCHBOARD_BUSINESS_TIMEZONE as the settings read it: the environment (with `switchboard --env-file`
    the settings file too), then `.env` in the working folder, then the settings' default."""
    from dotenv import dotenv_values

    name = "SWITCHBOARD_BUSINESS_TIMEZONE"
    return os.environ.get(name) or dotenv_values(".env").get(name) or "Europe/Berlin"


def _backfill() -> None:
    zone = ZoneInfo(_business_timezone())
    connection = op.get_bind()
    messages = sa.table(
        "customer_communications",
        *(
            sa.column(name)
            for name in ("channel", "provider", "campaign_id", "template_id", "direction", "segments", "encoding")
        ),
        sa.column("sent_at", sa.DateTime(timezone=True)),
    )
    totals: dict[tuple[object, ...], Counter[str]] = {}
    rows = connection.execute(
        sa.select(
            messages.c.provider,
            messages.c.campaign_id,
            messages.c.template_id,
            messages.c.segments,
            messages.c.encoding,
            messages.c.sent_at,
        ).where(
            messages.c.channel == "sms",
            messages.c.direction == "outbound",
            messages.c.sent_at.is_not(None),
            messages.c.segments > 0,
            messages.c.encoding.in_(list(PREFIX)),
        )
    )
    for provider, campaign_id, template_id, segments, encoding, sent_at in rows:
        if sent_at.tzinfo is None:  # SQLite keeps UTC without an offset
            sent_at = sent_at.replace(tzinfo=ZoneInfo("UTC"))
        key = (sent_at.astimezone(zone).date(), provider, campaign_id or 0, template_id or 0)
        counts = totals.setdefault(key, Counter())
        prefix = PREFIX[encoding]
        counts[f"{prefix}_sent"] += 1
        counts[f"{prefix}_segments"] += segments
        if segments > 1:
            counts[f"{prefix}_long"] += 1
    feed = sa.table(
        "communication_analytics",
        *(sa.column(name) for name in ("day", "channel", "provider", "campaign_id", "template_id", *FIGURES)),
    )
    for (day, provider, campaign_id, template_id), counts in sorted(totals.items()):
        connection.execute(
            sa.update(feed)
            .where(
                feed.c.day == day,
                feed.c.channel == "sms",
                feed.c.provider == provider,
                feed.c.campaign_id == campaign_id,
                feed.c.template_id == template_id,
            )
            .values(**{name: counts[name] for name in FIGURES})
        )


def downgrade() -> None:
    op.drop_index("ix_customer_communications_failures", table_name="customer_communications")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_customer_history")
        batch_op.drop_index("ix_orders_created_status")
        batch_op.create_index("ix_orders_created_at", ["created_at"])
        batch_op.create_index("ix_orders_customer_created", ["customer_id", "created_at"])
    with op.batch_alter_table("communication_analytics", schema=None) as batch_op:
        for name in FIGURES:
            batch_op.drop_column(name)
