"""Who is in the sandbox's Slack workspace and which channels it has: the demo seed's staff, one stranger."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SlackPerson:
    """A member of the workspace the page lets you act as."""

    id: str
    name: str
    #: What the page says about them (their role in the demo, or that Switchboard does not know them).
    note: str = ""


@dataclass(frozen=True)
class SlackChannelSpec:
    """A channel the workspace starts with; `bot_member` is whether the app has been invited."""

    id: str
    name: str
    topic: str = ""
    bot_member: bool = True


# The demo seed's staff Slack ids (storage/seeding/catalogue.py: staff_rows), so a slash command typed
# as one of them is answered for that person's role; a test keeps the two lists in step.
_AGENTS = (
    "Lena Hoffmann", "Jonas Becker", "Sophie Wagner", "Maximilian Huber", "Anna Gruber", "Lukas Steiner",
    "Laura Meier", "Noah Keller", "Olivia Hughes", "Harry Patel", "Emma Rodriguez", "Liam Chen",
)  # fmt: skip


def northwind_slack_staff() -> tuple[SlackPerson, ...]:
    people = [
        SlackPerson("U0ADMIN", "Amelia Novak", "admin"),
        SlackPerson("U0MANAGER1", "Markus Brandt", "manager"),
        SlackPerson("U0MANAGER2", "Grace Whitfield", "manager"),
    ]
    people += [SlackPerson(f"U0AGENT{n:02d}", name, "agent") for n, name in enumerate(_AGENTS, start=1)]
    people += [
        SlackPerson("U0VIEWER1", "Finance Viewer", "viewer"),
        SlackPerson("U0VIEWER2", "Board Viewer", "viewer"),
        SlackPerson("U0STRANGER", "Sam Stranger", "not linked to a staff account"),
    ]
    return tuple(people)


def northwind_channels() -> tuple[SlackChannelSpec, ...]:
    return (
        SlackChannelSpec("C0SWITCHBOARD", "switchboard", "Ask Switchboard: /sb help"),
        # Not invited: Switchboard's posts are refused with not_in_channel and answers go by response_url.
        SlackChannelSpec("C0GENERAL", "general", "Everyone at Northwind", bot_member=False),
        # Live chat (SWITCHBOARD_SLACK_CHAT_CHANNEL): one root message per customer conversation.
        SlackChannelSpec("C0LIVECHAT", "live-chat", "Customer conversations: reply in a thread to answer"),
    )
