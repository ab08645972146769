"""on PostgreSQL, the messages and their status history are partitioned by month

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 10:30:00

Both engines: each status-history row carries its message's creation time (`message_created_at`), and the
key that applies a retried receipt once becomes (communication_id, message_created_at, status, source),
which is the same key (a message has one creation time) with the column PostgreSQL partitions by.

PostgreSQL only:
- `customer_communications` is partitioned by month of `created_at`, `message_status_events` by month of
  `message_created_at`, so a month of a message and its history sit in partitions of the same month.
  Retention drops whole months (storage/partitions.py), and queries bounded in time read only their months.
  A default partition takes any row no month partition holds yet; the worker's daily pass moves such rows
  into their month.
- PostgreSQL requires every unique key of a partitioned table to hold the partition column, so the two
  keys the send-once guarantee rests on move to key tables, kept by a trigger in the same transaction:
  `communication_idempotency_keys` (a planned message is inserted once) and `communication_provider_ids`
  (a receipt or a retried inbound message finds the one message with that provider id). A duplicate is
  refused with a unique violation, as the unique constraints did, or skipped when the statement asks for
  that (`switchboard.message_keys = 'skip'`, set by storage/partitions.skipping_duplicate_messages where
  the SQLite statement says ON CONFLICT DO NOTHING).
- Foreign keys to a partitioned table must name its whole primary key (id, created_at): the status history
  and chat turns refer to their message by id without one.

Not safe while old code runs on PostgreSQL: old code's ON CONFLICT (idempotency_key) finds no unique key.
Stop the web and worker processes for this upgrade (docs/operations.md, "Upgrading to 0020"). It copies
both tables once.
"""

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.exc import SAWarning

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MESSAGES = "customer_communications"
EVENTS = "message_status_events"
#: Month partitions made ahead of time; the worker's daily pass keeps as many ahead.
MONTHS_AHEAD = 3

KEYS_FUNCTION = """
CREATE FUNCTION switchboard_message_keys() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    mode text := coalesce(current_setting('switchboard.message_keys', true), '');
BEGIN
    IF mode = 'off' THEN  -- rows moved between partitions keep their keys
        RETURN coalesce(NEW, OLD);
    END IF;
    IF TG_OP = 'DELETE' THEN
        DELETE FROM communication_idempotency_keys WHERE idempotency_key = OLD.idempotency_key;
        DELETE FROM communication_provider_ids
        WHERE provider = OLD.provider AND provider_message_id = OLD.provider_message_id;
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        IF NEW.idempotency_key IS DISTINCT FROM OLD.idempotency_key THEN
            DELETE FROM communication_idempotency_keys WHERE idempotency_key = OLD.idempotency_key;
        END IF;
        IF (NEW.provider, NEW.provider_message_id) IS DISTINCT FROM (OLD.provider, OLD.provider_message_id) THEN
            DELETE FROM communication_provider_ids
            WHERE provider = OLD.provider AND provider_message_id = OLD.provider_message_id;
        END IF;
    END IF;
    IF NEW.idempotency_key IS NOT NULL
            AND (TG_OP = 'INSERT' OR NEW.idempotency_key IS DISTINCT FROM OLD.idempotency_key) THEN
        INSERT INTO communication_idempotency_keys (idempotency_key, created_at)
        VALUES (NEW.idempotency_key, NEW.created_at) ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            IF mode = 'skip' AND TG_OP = 'INSERT' THEN
                RETURN NULL;
            END IF;
            RAISE unique_violation USING
                MESSAGE = 'duplicate key value violates unique constraint '
                    || '"uq_customer_communications_idempotency_key"',
                DETAIL = format('Key (idempotency_key)=(%s) already exists.', NEW.idempotency_key);
        END IF;
    END IF;
    IF NEW.provider_message_id IS NOT NULL AND (TG_OP = 'INSERT'
            OR (NEW.provider, NEW.provider_message_id) IS DISTINCT FROM (OLD.provider, OLD.provider_message_id)) THEN
        INSERT INTO communication_provider_ids (provider, provider_message_id, created_at)
        VALUES (NEW.provider, NEW.provider_message_id, NEW.created_at) ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            IF mode = 'skip' AND TG_OP = 'INSERT' THEN
                IF NEW.idempotency_key IS NOT NULL THEN
                    DELETE FROM communication_idempotency_keys WHERE idempotency_key = NEW.idempotency_key;
                END IF;
                RETURN NULL;
            END IF;
            RAISE unique_violation USING
                MESSAGE = 'duplicate key value violates unique constraint '
                    || '"uq_customer_communications_provider_provider_message_id"',
                DETAIL = format('Key (provider, provider_message_id)=(%s, %s) already exists.',
                                NEW.provider, NEW.provider_message_id);
        END IF;
    END IF;
    RETURN NEW;
END
$$
"""


def upgrade() -> None:
    with _quiet_reflection(), op.batch_alter_table(EVENTS) as batch:
        batch.add_column(sa.Column("message_created_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        f"UPDATE {EVENTS} SET message_created_at = "
        f"(SELECT created_at FROM {MESSAGES} WHERE {MESSAGES}.id = {EVENTS}.communication_id)"
    )
    with _quiet_reflection(), op.batch_alter_table(EVENTS) as batch:
        batch.alter_column("message_created_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.drop_constraint("uq_message_status_events_communication_id_status_source", type_="unique")
        batch.create_unique_constraint(
            "uq_message_status_events_once", ["communication_id", "message_created_at", "status", "source"]
        )
    if op.get_bind().dialect.name != "postgresql":
        return
    # The status history's and the chat turns' foreign keys to the messages (names PostgreSQL cut to 63).
    referring = op.get_bind().execute(
        sa.text(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint "
            "WHERE contype = 'f' AND confrelid = CAST(:table AS regclass)"
        ),
        {"table": MESSAGES},
    )
    for table, name in referring.all():
        op.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    op.execute(
        "CREATE TABLE communication_idempotency_keys (idempotency_key varchar(128) NOT NULL, "
        "created_at timestamptz NOT NULL, CONSTRAINT pk_communication_idempotency_keys PRIMARY KEY "
        "(idempotency_key))"
    )
    op.execute(
        "CREATE TABLE communication_provider_ids (provider varchar(32) NOT NULL, "
        "provider_message_id varchar(128) NOT NULL, created_at timestamptz NOT NULL, "
        "CONSTRAINT pk_communication_provider_ids PRIMARY KEY (provider, provider_message_id))"
    )
    op.execute(
        "CREATE INDEX ix_communication_idempotency_keys_created_at ON communication_idempotency_keys (created_at)"
    )
    op.execute(
        "CREATE INDEX ix_communication_provider_ids_created_at ON communication_provider_ids (created_at)"
    )
    op.execute(
        "INSERT INTO communication_idempotency_keys SELECT idempotency_key, created_at "
        f"FROM {MESSAGES} WHERE idempotency_key IS NOT NULL"
    )
    op.execute(
        "INSERT INTO communication_provider_ids SELECT provider, provider_message_id, created_at "
        f"FROM {MESSAGES} WHERE provider_message_id IS NOT NULL"
    )
    months = _months_to_hold()
    _rebuild(
        MESSAGES,
        partition_by="created_at",
        months=months,
        constraints=[f"CONSTRAINT pk_{MESSAGES} PRIMARY KEY (id, created_at)"],
    )
    _rebuild(
        EVENTS,
        partition_by="message_created_at",
        months=months,
        constraints=[
            f"CONSTRAINT pk_{EVENTS} PRIMARY KEY (id, message_created_at)",
            "CONSTRAINT uq_message_status_events_once UNIQUE (communication_id, message_created_at, status, source)",
        ],
    )
    # The lookups the unique keys' indexes served: a message by idempotency key, a receipt's message.
    op.execute(f"CREATE INDEX ix_{MESSAGES}_idempotency_key ON {MESSAGES} (idempotency_key)")
    op.execute(f"CREATE INDEX ix_{MESSAGES}_provider_id ON {MESSAGES} (provider, provider_message_id)")
    op.execute(KEYS_FUNCTION)
    op.execute(
        "CREATE TRIGGER message_keys BEFORE INSERT OR UPDATE OF idempotency_key, provider, provider_message_id "
        f"OR DELETE ON {MESSAGES} FOR EACH ROW EXECUTE FUNCTION switchboard_message_keys()"
    )
    # Autovacuum never analyzes a partitioned table itself: its planner statistics come from here.
    op.execute(f"ANALYZE {MESSAGES}")
    op.execute(f"ANALYZE {EVENTS}")
    # TRUNCATE fires no row trigger: emptying the messages (a reseed) empties their keys too.
    op.execute(
        "CREATE FUNCTION switchboard_message_keys_truncated() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN TRUNCATE communication_idempotency_keys, communication_provider_ids; RETURN NULL; END $$"
    )
    op.execute(
        f"CREATE TRIGGER message_keys_truncated AFTER TRUNCATE ON {MESSAGES} "
        "FOR EACH STATEMENT EXECUTE FUNCTION switchboard_message_keys_truncated()"
    )


#: The comment storage/partitions.py puts on a month's table it detached to remove (storage.message_months.
#: DETACHED_MARK, written out here: a migration does not change with the code after it).
BEING_REMOVED = "switchboard: a month of messages being removed"


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _forget_removed_months()
        op.execute(f"DROP TRIGGER message_keys ON {MESSAGES}")
        op.execute("DROP FUNCTION switchboard_message_keys()")
        op.execute(f"DROP TRIGGER message_keys_truncated ON {MESSAGES}")
        op.execute("DROP FUNCTION switchboard_message_keys_truncated()")
        op.execute(f"DROP INDEX ix_{MESSAGES}_idempotency_key")
        op.execute(f"DROP INDEX ix_{MESSAGES}_provider_id")
        _rebuild(
            MESSAGES,
            partition_by=None,
            months=[],
            constraints=[
                f"CONSTRAINT pk_{MESSAGES} PRIMARY KEY (id)",
                f"CONSTRAINT uq_{MESSAGES}_idempotency_key UNIQUE (idempotency_key)",
                f"CONSTRAINT uq_{MESSAGES}_provider_provider_message_id UNIQUE (provider, provider_message_id)",
            ],
        )
        _rebuild(
            EVENTS,
            partition_by=None,
            months=[],
            constraints=[
                f"CONSTRAINT pk_{EVENTS} PRIMARY KEY (id)",
                "CONSTRAINT uq_message_status_events_once UNIQUE (communication_id, message_created_at, status, source)",
            ],
        )
        op.execute("DROP TABLE communication_idempotency_keys")
        op.execute("DROP TABLE communication_provider_ids")
        op.execute(
            f"ALTER TABLE {EVENTS} ADD CONSTRAINT fk_{EVENTS}_communication_id_{MESSAGES} "
            f"FOREIGN KEY (communication_id) REFERENCES {MESSAGES} (id) ON DELETE CASCADE"
        )
        op.execute(
            f"ALTER TABLE chat_messages ADD CONSTRAINT fk_chat_messages_communication_id_{MESSAGES} "
            f"FOREIGN KEY (communication_id) REFERENCES {MESSAGES} (id)"
        )
    with _quiet_reflection(), op.batch_alter_table(EVENTS) as batch:
        batch.drop_constraint("uq_message_status_events_once", type_="unique")
        batch.create_unique_constraint(
            "uq_message_status_events_communication_id_status_source",
            ["communication_id", "status", "source"],
        )
        batch.drop_column("message_created_at")


def _forget_removed_months() -> None:
    """Months retention took out of the tables: their emptied tables (`…_removed_…`) are dropped with the
    partitioned tables; a month detached and not yet emptied stops the downgrade, since its messages would be
    neither kept nor removed (`switchboard retention` finishes it)."""
    marked = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind = 'r' AND NOT c.relispartition "
                "AND obj_description(c.oid, 'pg_class') = :mark ORDER BY 1"
            ),
            {"mark": BEING_REMOVED},
        )
        .scalars()
        .all()
    )
    unfinished = [name for name in marked if "_removed_" not in name]
    if unfinished:
        raise RuntimeError(
            f"retention is still removing months of messages ({', '.join(unfinished)}): run "
            "`switchboard retention` until it has removed them, then downgrade again; nothing was changed"
        )
    for name in marked:
        op.execute(f'DROP TABLE "{name}"')


@contextmanager
def _quiet_reflection() -> Iterator[None]:
    """SQLite's table copy reflects the messages table, whose expression index SQLAlchemy cannot read (and
    does not need to: that table is not copied)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection", SAWarning)
        yield


def _months_to_hold() -> list[datetime]:
    """The first day of every month a message was created in, and of this month to MONTHS_AHEAD ahead
    (only months that hold rows: one message dated 1970 makes one partition, not 680)."""
    found = op.get_bind().execute(
        sa.text(f"SELECT DISTINCT date_trunc('month', created_at AT TIME ZONE 'UTC') FROM {MESSAGES}")
    )
    now = datetime.now(UTC)
    months = {month.replace(tzinfo=UTC) for month in found.scalars()}
    return sorted(months | {_month_of(now, ahead) for ahead in range(MONTHS_AHEAD + 1)})


def _month_of(moment: datetime, ahead: int = 0) -> datetime:
    index = moment.year * 12 + moment.month - 1 + ahead
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def _rebuild(table: str, *, partition_by: str | None, months: list[datetime], constraints: list[str]) -> None:
    """Replace `table` by a copy partitioned by month of `partition_by` (or not partitioned: None), with the
    same columns, defaults, checks, outgoing foreign keys and plain indexes, and the given keys."""
    bind = op.get_bind()
    indexes = bind.execute(
        sa.text(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = CAST(:table AS regclass) AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid AND c.conrelid = x.indrelid)"
        ),
        {"table": table},
    ).all()
    foreign_keys = bind.execute(
        sa.text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = CAST(:table AS regclass) AND contype = 'f'"
        ),
        {"table": table},
    ).all()
    sequence = bind.execute(sa.text("SELECT pg_get_serial_sequence(:table, 'id')"), {"table": table}).scalar()
    old = f"{table}_before_0020" if partition_by else f"{table}_partitioned"
    op.execute(f"ALTER TABLE {table} RENAME TO {old}")
    for name, _ in indexes:
        op.execute(f"DROP INDEX {name}")
    for name in bind.execute(
        sa.text(
            "SELECT conname FROM pg_constraint WHERE conrelid = CAST(:table AS regclass) AND contype IN ('p', 'u', 'f')"
        ),
        {"table": old},
    ).scalars():
        op.execute(f'ALTER TABLE {old} DROP CONSTRAINT "{name}"')
    partitioned = f" PARTITION BY RANGE ({partition_by})" if partition_by else ""
    keys = "".join(f", {constraint}" for constraint in constraints)
    op.execute(
        f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS{keys}){partitioned}"
    )
    if partition_by:
        for month in months:
            after = _month_of(month, 1)
            op.execute(
                f"CREATE TABLE {table}_{month:%Y_%m} PARTITION OF {table} "
                f"FOR VALUES FROM ('{month.isoformat()}') TO ('{after.isoformat()}')"
            )
        op.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
    op.execute(f"INSERT INTO {table} SELECT * FROM {old}")
    for _, definition in indexes:
        op.execute(definition.replace(" ON ONLY ", " ON ").replace(f" {old} ", f" {table} "))
    for name, definition in foreign_keys:
        op.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    if sequence:
        op.execute(f"ALTER SEQUENCE {sequence} OWNED BY {table}.id")
    op.execute(f"DROP TABLE {old}")
