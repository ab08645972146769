"""Looks at conversations in a state, as people ask them: "how many chats are open", "show me unassigned
conversations", "offene Chats". They mean `chat list` with that queue, not a figure of chat messages."""

from __future__ import annotations

from collections.abc import Mapping

from bot.commands.parsing import normalise, tokenise

#: The conversations, always plural ("open a chat with Anna" is `chat open`, a thing to do).
CONVERSATIONS = frozenset({"chats", "conversations", "gespräche", "unterhaltungen"})
#: A state people name, and the `chat list` queue that shows it.
STATES: Mapping[str, str] = {
    **dict.fromkeys(("open", "offen", "offene", "offenen"), "open"),
    **dict.fromkeys(("unassigned", "unanswered", "waiting", "unzugewiesen", "unzugewiesene"), "unassigned"),
    **dict.fromkeys(("snoozed", "zurückgestellt", "zurückgestellte"), "snoozed"),
    **dict.fromkeys(("resolved", "closed", "done", "erledigt", "erledigte", "geschlossen"), "resolved"),
    **dict.fromkeys(("my", "mine", "meine"), "mine"),
}


def conversations_in_a_state(text: str) -> str | None:
    """The `chat list` queue a look at conversations names ("which chats are unassigned?" → unassigned), or
    None when `text` names no conversations in the plural or no state."""
    words = [normalise(token) for token in tokenise(text)]
    if not CONVERSATIONS & set(words):
        return None
    named = [STATES[word] for word in words if word in STATES]
    return named[0] if named else None


def without_conversations(text: str) -> str:
    """`text` less its words for conversations, which read close to "conversions" (a campaign figure): what
    is left shows whether a figure is named ("first response time of open chats")."""
    return " ".join(token for token in tokenise(text) if normalise(token) not in CONVERSATIONS)
