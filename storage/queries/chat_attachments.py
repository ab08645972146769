"""Kept conversation files as pages and staff chats show them: a turn's files by name and size, one file's bytes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.conversations.attachments import TurnFile
from storage.database import Database
from storage.models import ChatAttachment, ChatMessage


@dataclass(frozen=True)
class StoredFile:
    """One kept file, to serve: its safe name, the type its first bytes showed, its bytes."""

    filename: str
    content_type: str
    content: bytes


async def turn_files(session: AsyncSession, turn_ids: Sequence[int]) -> dict[int, tuple[TurnFile, ...]]:
    """The files of each turn (turn id -> files, in the order they came), without their bytes."""
    if not turn_ids:
        return {}
    rows = (
        await session.execute(
            select(
                ChatAttachment.id,
                ChatAttachment.message_id,
                ChatAttachment.filename,
                ChatAttachment.content_type,
                ChatAttachment.size_bytes,
            )
            .where(ChatAttachment.message_id.in_(list(set(turn_ids))))
            .order_by(ChatAttachment.id)
        )
    ).all()
    found: dict[int, list[TurnFile]] = {}
    for row in rows:
        found.setdefault(row.message_id, []).append(
            TurnFile(row.id, row.filename, row.content_type, row.size_bytes)
        )
    return {turn_id: tuple(files) for turn_id, files in found.items()}


async def stored_file(database: Database, attachment_id: int) -> StoredFile | None:
    async with database.read_sessions() as session:
        row = (
            await session.execute(
                select(ChatAttachment.filename, ChatAttachment.content_type, ChatAttachment.content).where(
                    ChatAttachment.id == attachment_id
                )
            )
        ).one_or_none()
    return None if row is None else StoredFile(row.filename, row.content_type, bytes(row.content))


async def sent_file(database: Database, chat_id: int, sha256: str) -> StoredFile | None:
    """A file kept in conversation `chat_id` with these bytes (the one a signed media link names)."""
    async with database.read_sessions() as session:
        row = (
            await session.execute(
                select(ChatAttachment.filename, ChatAttachment.content_type, ChatAttachment.content)
                .join(ChatMessage, ChatMessage.id == ChatAttachment.message_id)
                .where(ChatMessage.session_id == chat_id, ChatAttachment.sha256 == sha256)
                .order_by(ChatAttachment.id)
                .limit(1)
            )
        ).one_or_none()
    return None if row is None else StoredFile(row.filename, row.content_type, bytes(row.content))
