"""Creating, changing and deleting canned replies: validated, one transaction each, audited."""

from __future__ import annotations

from datetime import datetime

from domain.audit import AuditEntry
from domain.canned_replies.model import (
    CannedActor,
    CannedReply,
    CannedReplyDraft,
    CannedReplyError,
    CannedReplyNotFound,
)
from domain.canned_replies.ports import CannedReplyUnitOfWork
from domain.canned_replies.rules import validate_draft, variables_in


async def create_canned_reply(
    uow: CannedReplyUnitOfWork, draft: CannedReplyDraft, actor: CannedActor, *, now: datetime
) -> CannedReply:
    draft = validate_draft(draft)
    async with uow:
        reply = await uow.canned_replies.add(draft, actor.staff_id, now)
        if reply is None:
            raise CannedReplyError(f"There is already a canned reply with the shortcut {draft.shortcut}.")
        _audit(uow, actor, "canned_reply.create", reply)
        await uow.commit()
    return reply


async def update_canned_reply(
    uow: CannedReplyUnitOfWork, reply_id: int, draft: CannedReplyDraft, actor: CannedActor, *, now: datetime
) -> CannedReply:
    draft = validate_draft(draft)
    async with uow:
        await _existing(uow, reply_id)
        other = await uow.canned_replies.by_shortcut(draft.shortcut)
        if other is not None and other.id != reply_id:
            raise CannedReplyError(f"There is already a canned reply with the shortcut {draft.shortcut}.")
        await uow.canned_replies.save(reply_id, draft, now)
        reply = await _existing(uow, reply_id)
        _audit(uow, actor, "canned_reply.update", reply)
        await uow.commit()
    return reply


async def delete_canned_reply(uow: CannedReplyUnitOfWork, reply_id: int, actor: CannedActor) -> CannedReply:
    async with uow:
        reply = await _existing(uow, reply_id)
        await uow.canned_replies.delete(reply_id)
        _audit(uow, actor, "canned_reply.delete", reply)
        await uow.commit()
    return reply


async def _existing(uow: CannedReplyUnitOfWork, reply_id: int) -> CannedReply:
    reply = await uow.canned_replies.by_id(reply_id, for_update=True)
    if reply is None:
        raise CannedReplyNotFound(f"There is no canned reply {reply_id}.")
    return reply


def _audit(uow: CannedReplyUnitOfWork, actor: CannedActor, action: str, reply: CannedReply) -> None:
    detail: dict[str, object] = {
        "shortcut": reply.shortcut,
        "title": reply.title,
        "team": reply.team,
        "variables": list(variables_in(reply.body)),
    }
    uow.audit.record(AuditEntry(actor.email, actor.via, action, f"canned_reply:{reply.id}", detail))
