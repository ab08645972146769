"""The demo's chat widget: one key for the clinic's website, and the visitors behind seeded web chats."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from storage.seeding.world import World

DEMO_WIDGET_KEY = "northwind-website"
#: The demo serves its own page (/widget/demo, always allowed); these are the usual local origins.
DEMO_ORIGINS = (
    "http://127.0.0.1:8000",
    "http://localhost:8000",
    "http://127.0.0.1:8025",
    "http://localhost:8025",
)


def widget_key_rows(created_at: datetime) -> list[dict[str, Any]]:
    return [
        {"id": 1, "key": DEMO_WIDGET_KEY, "name": "Northwind website", "allowed_origins": list(DEMO_ORIGINS),
         "location_id": None, "enabled": True, "created_at": created_at},
    ]  # fmt: skip


def seeded_visitor(world: World, customer_id: int, at: datetime) -> None:
    """The browser a seeded web chat came from. Its token hash is no SHA-256 digest (it has a `-`), so no
    token can ever match it: nobody can speak as a seeded customer, and replies to them wait in their chat."""
    world.sink.add(
        "chat_widget_visitors",
        {"id": world.ids.next("chat_widget_visitors"), "token_hash": f"seeded-visitor-{customer_id}",
         "key_id": 1, "customer_id": customer_id, "created_at": at, "last_seen_at": at},
    )  # fmt: skip
