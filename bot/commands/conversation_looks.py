"""Looks at conversations in a state, as people ask them: "how many chats are open", "show me unassigned
conversations", "offene Chats". They mean `chat list` with that queue, not a figure of chat messages."""

from __future__ import annotations

from collections.abc import Mapping

from bot.commands.parsing import normalise, tokenise

#: The conversations, always plural ("open a chat with Anna" is `chat open`, a thing to do).
CONVERSATIONS = frozenset({"chats", "conversations", "gespräche", "unterhaltungen"})
#: Of those, the words that alone look at a queue ("conversations": mine); "how many chats" is the figure
#: (the conversations started), as "chats last week" is.
ONLY_CONVERSATIONS = CONVERSATIONS - {"chats"}
#: A state people name, and the `chat list` queue that shows it. "Waiting" and "unanswered" are the open
#: conversations whose customer wrote last (they wait on us), whoever holds them.
STATES: Mapping[str, str] = {
    **dict.fromkeys(("open", "offen", "offene", "offenen"), "open"),
    **dict.fromkeys(("waiting", "unanswered", "wartende", "wartenden"), "waiting"),
    **dict.fromkeys(("unbeantwortet", "unbeantwortete", "unbeantworteten"), "waiting"),
    **dict.fromkeys(("warten", "wartet"), "waiting"),  # "wie viele Chats warten gerade?"
    **dict.fromkeys(("unassigned", "unzugewiesen", "unzugewiesene", "unzugewiesenen"), "unassigned"),
    **dict.fromkeys(("snoozed", "zurückgestellt", "zurückgestellte", "zurückgestellten"), "snoozed"),
    **dict.fromkeys(("resolved", "closed", "done", "erledigt", "erledigte", "erledigten"), "resolved"),
    **dict.fromkeys(("geschlossen", "geschlossene", "geschlossenen"), "resolved"),
    **dict.fromkeys(("my", "mine", "meine", "meinen"), "mine"),
}
#: After these a state word is a verb: "how do I open chats", "how to close conversations", "mark … as done".
SUBJECTS = frozenset({"i", "we", "you", "to", "as", "ich", "wir"})
#: Words that only ask: a look made of these, a state and conversations names nothing else (no period, no
#: channel, no split), so the queue answers all of it.
ASKING = frozenset(
    {"how", "many", "are", "is", "there", "do", "does", "we", "i", "have", "has", "show", "me", "list", "see"}
    | {"view", "get", "all", "the", "which", "what", "our", "currently", "now", "right", "still", "any"}
    | {"that", "at", "moment", "please", "can", "could", "you", "were", "was", "been", "wie", "viele", "sind"}
    | {"gibt", "es", "zeige", "zeig", "mir", "die", "alle", "welche", "haben", "wir", "noch", "gerade", "im"}
    | {"aktuell", "habe", "ich", "bitte", "unsere", "unser", "unseren"}
)
#: Words for the whole team: "how many conversations do we have" is every live one, not the asker's.
TEAM = frozenset({"we", "our", "all", "there", "any", "wir", "unsere", "unser", "unseren", "alle"})


def _words(text: str) -> list[str]:
    return [word for word in (normalise(token) for token in tokenise(text)) if word]


def adjective_states(words: list[str]) -> list[int]:
    """Where in `words` a state word says which conversations ("open chats", "chats that are open") rather
    than what to do ("how do I open chats")."""
    if not CONVERSATIONS & set(words):
        return []
    return [
        index
        for index, word in enumerate(words)
        if word in STATES and not (index > 0 and words[index - 1] in SUBJECTS and STATES[word] != "mine")
    ]


def _queue(words: list[str], places: list[int]) -> str | None:
    """The queue the states name. "My open chats" are mine (my live ones); "my snoozed chats" are the
    snoozed ones, a queue that is not kept per person."""
    named = {STATES[words[index]] for index in places}
    if named <= {"mine", "open"}:
        return "mine" if "mine" in named else ("open" if named else None)
    return next(queue for queue in ("unassigned", "waiting", "snoozed", "resolved") if queue in named)


def names_conversations_in_a_state(text: str) -> str | None:
    """The queue a sentence names conversations in, whatever else it says ("how do I see open chats")."""
    words = _words(text)
    return _queue(words, adjective_states(words))


def conversation_look(text: str) -> str | None:
    """The `chat list` queue `text` asks to see when that is all it asks ("which chats are unassigned?",
    "meine offenen Chats": mine; "conversations" alone: mine; "all conversations": open), else None: a
    period, a channel or a split left over ("closed chats last week") is not a look at a queue, and "how
    many chats" names no state (it is the conversations started, a figure)."""
    words = _words(text)
    if not CONVERSATIONS & set(words):
        return None
    places = adjective_states(words)
    if any(
        word not in ASKING and word not in CONVERSATIONS and i not in places for i, word in enumerate(words)
    ):
        return None
    queue = _queue(words, places)
    if queue is None and ONLY_CONVERSATIONS & set(words):
        return "open" if TEAM & set(words) else "mine"
    return queue


def what_conversations_are_not_kept_by(text: str) -> str | None:
    """Why a question about conversations in a state that is no look at a queue ("closed chats last week",
    "open chats on whatsapp") cannot be answered as asked, naming what can; None when it names no state (so
    "chats last week" and "conversations by channel" are the conversations started, a figure)."""
    words = _words(text)
    queue = _queue(words, adjective_states(words))
    if queue is None:
        return None
    shown = f"`chat list {queue}`" if queue else "`chat list` (mine, unassigned, open, snoozed or resolved)"
    return (
        f"Conversations are listed by queue only: {shown}. Their figures are the conversations started, first "
        "response time, resolution time, satisfaction and the SLA met rate, e.g. “conversations last week by "
        "staff” or “first response time last week by channel”."
    )


def without_conversations(text: str) -> str:
    """`text` less its words for conversations, which read close to "conversions" (a campaign figure): what
    is left shows whether a figure is named ("first response time of open chats")."""
    return " ".join(token for token in tokenise(text) if normalise(token) not in CONVERSATIONS)
