"""Signing in: a login link works once; every sign-in is audited in the same transaction that allows it."""

from __future__ import annotations

from datetime import datetime

from domain.audit import AuditEntry
from domain.sign_in.ports import SignInUnitOfWork

SIGN_IN_ACTION = "staff.login"


async def use_login_link(uow: SignInUnitOfWork, staff_email: str, nonce: str, issued_after: datetime) -> bool:
    """Records the sign-in; False when this link was used before (a link signs in once).

    A link's nonce is only looked for among sign-ins since the link could have been issued, so the
    audit trail, not a table of its own, is what makes a link single-use.
    """
    target = f"login-link:{nonce}"
    async with uow:
        if await uow.sign_ins.link_used_since(target, issued_after):
            return False
        uow.audit.record(AuditEntry(actor=staff_email, via="web", action=SIGN_IN_ACTION, target=target))
        await uow.commit()
    return True


async def sign_in_as_demo_staff(uow: SignInUnitOfWork, staff_email: str) -> None:
    """The sandbox's demo sign-in, audited like any other."""
    async with uow:
        uow.audit.record(AuditEntry(actor=staff_email, via="web", action=SIGN_IN_ACTION, target="demo"))
        await uow.commit()
