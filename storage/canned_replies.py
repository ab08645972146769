"""Canned replies in SQL: the repository the canned-reply use-cases write through, and its unit of work."""

from __future__ import annotations

from datetime import datetime
from typing import Self

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.canned_replies.model import CannedReply, CannedReplyDraft
from storage.models import CannedReply as CannedReplyRow
from storage.sql import dialect_of, insert_for, table_of
from storage.unit_of_work import SqlUnitOfWork

CANNED = table_of(CannedReplyRow)
MAX_ID = 2**63 - 1


def canned_reply(row: CannedReplyRow) -> CannedReply:
    return CannedReply(row.id, row.shortcut, row.title, row.body, row.team, row.created_by, row.updated_at)


class SqlCannedReplies:
    """domain.canned_replies.ports.CannedReplies; nothing here commits."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def by_id(self, reply_id: int, *, for_update: bool = False) -> CannedReply | None:
        if not 0 < reply_id <= MAX_ID:
            return None
        query = select(CannedReplyRow).where(CannedReplyRow.id == reply_id)
        if for_update and dialect_of(self._session) == "postgresql":
            query = query.with_for_update()
        row = await self._session.scalar(query.execution_options(populate_existing=True))
        return None if row is None else canned_reply(row)

    async def by_shortcut(self, shortcut: str) -> CannedReply | None:
        row = await self._session.scalar(select(CannedReplyRow).where(CannedReplyRow.shortcut == shortcut))
        return None if row is None else canned_reply(row)

    async def add(self, draft: CannedReplyDraft, created_by: int | None, at: datetime) -> CannedReply | None:
        # ON CONFLICT on the unique shortcut: of two creates with one shortcut at once, the second gets None.
        statement = (
            insert_for(self._session, CANNED)
            .values(
                shortcut=draft.shortcut,
                title=draft.title,
                body=draft.body,
                team=draft.team,
                created_by=created_by,
                created_at=at,
                updated_at=at,
            )
            .on_conflict_do_nothing(index_elements=[CANNED.c.shortcut])
            .returning(CANNED.c.id)
        )
        reply_id = (await self._session.execute(statement)).scalar()
        return None if reply_id is None else await self.by_id(reply_id)

    async def save(self, reply_id: int, draft: CannedReplyDraft, at: datetime) -> None:
        await self._session.execute(
            update(CannedReplyRow)
            .where(CannedReplyRow.id == reply_id)
            .values(
                shortcut=draft.shortcut, title=draft.title, body=draft.body, team=draft.team, updated_at=at
            ),
            execution_options={"synchronize_session": False},
        )

    async def delete(self, reply_id: int) -> None:
        await self._session.execute(
            delete(CannedReplyRow).where(CannedReplyRow.id == reply_id),
            execution_options={"synchronize_session": False},
        )


class SqlCannedReplyUnitOfWork(SqlUnitOfWork):
    """Satisfies domain.canned_replies.ports.CannedReplyUnitOfWork."""

    canned_replies: SqlCannedReplies

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.canned_replies = SqlCannedReplies(self.session)
        return self
