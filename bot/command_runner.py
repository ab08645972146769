"""The one seam between the chat front ends (Slack, Telegram staff bot) and the command layer.

Front ends know a platform user id and the text typed; the command layer knows staff, permissions and
use-cases. `CommandRunner` is all a front end may ask of it, so front ends are testable with a fake;
`StaffCommandRunner` is the real one: identity resolution, then `bot.commands.dispatch.handle`.
"""

from __future__ import annotations

from typing import Literal, Protocol

from bot.commands.context import CommandContext
from bot.commands.dispatch import handle
from bot.replies import Reply
from domain.staff import StaffIdentity
from storage.queries.staff import staff_by_slack, staff_by_telegram

#: Where a command came from; the command layer may tailor wording or permissions to it.
Via = Literal["slack", "telegram"]


class CommandRunner(Protocol):
    """Runs command text on behalf of a chat user and returns the neutral reply.

    Returns None when the platform user is not linked to any (active) staff account: the front end
    then refuses politely and shows nothing else.
    """

    async def run(
        self,
        text: str,
        *,
        slack_user_id: str | None = None,
        slack_team_id: str | None = None,
        telegram_user_id: int | None = None,
        via: Via,
    ) -> Reply | None: ...


class StaffCommandRunner:
    """Resolves the chat user to a staff member, then runs the command through the command table."""

    def __init__(self, context: CommandContext) -> None:
        self.context = context

    async def run(
        self,
        text: str,
        *,
        slack_user_id: str | None = None,
        slack_team_id: str | None = None,
        telegram_user_id: int | None = None,
        via: Via,
    ) -> Reply | None:
        who = await self.identify(slack_user_id, slack_team_id, telegram_user_id, via)
        if who is None:
            return None
        return await handle(text, who, self.context)

    async def identify(
        self, slack_user_id: str | None, slack_team_id: str | None, telegram_user_id: int | None, via: Via
    ) -> StaffIdentity | None:
        database = self.context.database
        # Only the id of the platform the message came from counts: a Telegram message never
        # borrows a Slack identity, whatever the caller passed.
        if via == "slack" and slack_user_id:
            return await staff_by_slack(database, slack_team_id, slack_user_id)
        if via == "telegram" and telegram_user_id is not None:
            return await staff_by_telegram(database, telegram_user_id)
        return None
