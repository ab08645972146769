"""Telling delivery outcomes in a staff chat, without a chat or a database: what a refusal does to the echo
and to those after it."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from domain.conversations.delivery_echoes import PostNotTaken, PostRefused, tell_in_order


class Chat:
    """Refuses the echoes named in `refusals` with the given exception; tells the others."""

    def __init__(self, refusals: dict[int, Exception], give_back_fails: bool = False) -> None:
        self.refusals = refusals
        self.told: list[int] = []
        self.given_back: list[int] = []
        self.give_back_fails = give_back_fails

    async def tell(self, echo: int) -> bool:
        if echo in self.refusals:
            raise self.refusals[echo]
        self.told.append(echo)
        return echo != 4  # echo 4 has nowhere to be told (no thread)

    async def give_back(self, echoes: Sequence[int]) -> None:
        if self.give_back_fails:
            raise ConnectionError("database is locked")
        self.given_back.extend(echoes)


@pytest.mark.parametrize(
    ("refusal", "told", "given_back", "counted"),
    [
        (PostRefused("is_archived"), [1, 3, 4, 5], [], (3, 0)),  # dropped, the others go on
        (PostNotTaken("invalid_arguments"), [1, 3, 4, 5], [2], (3, 1)),  # tried again, the others go on
        (TimeoutError("Slack away"), [1], [2, 3, 4, 5], (1, 4)),  # it and the rest wait for the next pass
    ],
)
async def test_a_refusal_decides_what_happens_to_the_echo_and_those_after_it(
    refusal: Exception, told: list[int], given_back: list[int], counted: tuple[int, int]
) -> None:
    chat, errors = Chat({2: refusal}), list[str]()
    done = await tell_in_order(
        [1, 2, 3, 4, 5], chat.tell, chat.give_back, chat="Slack", turn_of=lambda e: e, errors=errors
    )
    assert chat.told == told and chat.given_back == given_back
    assert (done.told, done.given_back) == counted
    assert errors == [f"echo 2: {refusal}"]


async def test_a_give_back_the_database_refuses_is_logged_and_not_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    chat, errors = Chat({1: TimeoutError("Telegram away")}, give_back_fails=True), list[str]()
    done = await tell_in_order(
        [1, 2], chat.tell, chat.give_back, chat="Telegram", turn_of=lambda e: e, errors=errors
    )
    assert (done.told, done.given_back) == (0, 0)
    assert "could not give back 2 delivery echoes in Telegram" in caplog.text
