"""Naming messages with their month: on PostgreSQL `customer_communications` is partitioned by month of
`created_at` (storage/partitions.py), and an id alone does not say which month holds a message. A statement
that also says when its messages were created reads only their months' partitions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import ColumnElement, true


def known_creation_times(
    message_ids: Iterable[int], created: Mapping[int, datetime] | None
) -> dict[int, datetime] | None:
    """These messages' creation times if `created` knows every one (as a worker knows those it claimed), else
    None: a statement can name the rows by (id, created_at) only when it has both for all of them."""
    if not created:
        return None
    wanted = set(message_ids)
    known = {i: created[i] for i in wanted if i in created}
    return known if len(known) == len(wanted) else None


def within_their_months(
    created_column: ColumnElement[datetime],
    message_ids: Iterable[int],
    created: Mapping[int, datetime] | None,
) -> ColumnElement[bool]:
    """A condition every one of these messages meets, given their creation times: `created_column` between
    the earliest and the latest, so PostgreSQL reads only the month partitions in between rather than every
    month's index. No condition (TRUE) when one of them is not known."""
    known = known_creation_times(message_ids, created)
    if not known:
        return true()
    return created_column.between(min(known.values()), max(known.values()))
