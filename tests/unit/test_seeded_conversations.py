"""The demo's conversations say whose turn it is as the live desk would."""

from __future__ import annotations

import pytest

from storage.seeding.conversations import session_status


@pytest.mark.parametrize(
    ("closed", "turns", "status"),
    [
        (False, 1, "open"),  # the customer asked; nobody answered yet
        (False, 2, "pending"),  # we answered: waiting for the customer
        (False, 3, "open"),  # the customer wrote again ("Danke!"): waiting for us (seeded #198 said pending)
        (False, 4, "pending"),
        (True, 3, "closed"),
    ],
)
def test_a_seeded_conversation_waits_for_whoever_is_to_answer(closed: bool, turns: int, status: str) -> None:
    assert session_status(closed, turns) == status
