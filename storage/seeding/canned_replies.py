"""The demo's canned replies: what a clinic's front desk answers every day, with `{variables}` to fill."""

from __future__ import annotations

from datetime import datetime

from storage.seeding.catalogue import Row

#: (shortcut, title, body, team); team None is everyone's.
CANNED_REPLIES: tuple[tuple[str, str, str, str | None], ...] = (
    (
        "hours",
        "Opening hours",
        "Hi {first_name}, {clinic} is open Monday to Friday 8:00–19:00 and Saturday 9:00–14:00. "
        "Anything else I can help with? – {agent_first_name}, {business_name}",
        None,
    ),
    (
        "reschedule",
        "Move an appointment",
        "Hi {first_name}, no problem: I can move your appointment to {new_time}. Shall I book that for you?",
        None,
    ),
    (
        "prices",
        "Price of a treatment",
        "Hi {first_name}, {service} costs {price} at {clinic}. You can pay by card or in cash at the desk.",
        None,
    ),
    (
        "thanks",
        "Thanks and goodbye",
        "Thank you, {first_name}! If anything else comes up, just write here. – {agent_first_name}, {business_name}",
        None,
    ),
    (
        "results",
        "Lab results are in",
        "Hi {first_name}, your results are in. {doctor} will go through them with you on {date}; "
        "reply here if that time does not suit you.",
        "Medical",
    ),
)


def canned_reply_rows(created_at: datetime, created_by: int) -> list[Row]:
    return [
        {
            "id": index + 1,
            "shortcut": shortcut,
            "title": title,
            "body": body,
            "team": team,
            "created_by": created_by,
            "created_at": created_at,
            "updated_at": created_at,
        }
        for index, (shortcut, title, body, team) in enumerate(CANNED_REPLIES)
    ]
