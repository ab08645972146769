"""The real command runner behind both staff bots: linked staff get the command table, anyone else None."""

from __future__ import annotations

from sqlalchemy import insert

from bot.command_runner import StaffCommandRunner
from storage.database import Database
from storage.models import StaffUser
from switchboard.settings import Settings
from switchboard.wiring import Container


async def test_linked_staff_are_answered_and_strangers_are_not(database: Database, database_url: str) -> None:
    async with database.engine.begin() as connection:
        await connection.execute(
            insert(StaffUser),
            [
                {
                    "email": "ada@northwind.example",
                    "name": "Ada",
                    "role": "admin",
                    "slack_team_id": "T1",
                    "slack_user_id": "U0ADMIN",
                    "telegram_user_id": 111,
                    "timezone": "UTC",
                    "locale": "en",
                    "active": True,
                }
            ],
        )
    container = Container(settings=Settings(database_url=database_url), database=database)
    runner = StaffCommandRunner(container.command_context())

    by_slack = await runner.run("help", slack_user_id="U0ADMIN", slack_team_id="T1", via="slack")
    by_telegram = await runner.run("help", telegram_user_id=111, via="telegram")
    assert by_slack is not None and by_slack.kind == "help"
    assert by_telegram is not None and by_telegram.text == by_slack.text

    assert await runner.run("help", slack_user_id="U0STRANGER", slack_team_id="T1", via="slack") is None
    assert await runner.run("help", telegram_user_id=999, via="telegram") is None
    # an id from another platform never counts
    assert await runner.run("help", slack_user_id="U0ADMIN", via="telegram") is None
