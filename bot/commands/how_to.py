"""How-to questions: "how do I book a video consultation?" is answered with the help of the command that
does it (`video book`), not read as a question about a figure ("video consultations", with "book" ignored)
nor met with commands whose names look like its words.

The command is found from the words people use: a command's noun or an everyday word for it
("consultation" is `video`, "patient" is `customer`), and a verb, its own or an everyday one ("create" is
`new`, "send" a campaign is `launch`). A one-word command (`send`, `cancel`, `noshow`) is named by its
word. A question that names a noun and no verb of it gets the help of all that noun's commands.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from bot.commands.conversation_looks import adjective_states
from bot.commands.parsing import normalise, tokenise
from bot.commands.registry import BY_NAME, NOUNS, verbs_of

#: How a how-to question begins ("how do I", "how can we", "how to", "is there a way to", "where do I").
#: In German: "wie kann ich", "wie buche ich" (a verb in the first person; "wie viele", "wie ist" ask for a
#: figure and are not matched).
HOW_TO = re.compile(
    r"^\s*(?:how\s+(?:do|can|could|should|would|shall|may)\s+(?:i|we|one)|how\s+to|how\s+does\s+one"
    r"|is\s+there\s+a\s+way\s+to|where\s+(?:do|can)\s+(?:i|we)"
    r"|wie\s+(?:kann|können|könnte|soll|sollte|muss)\s+(?:ich|man|wir)|wie(?=\s+\w+e\s+ich\b))\b",
    re.IGNORECASE,
)
#: Everyday words for a command's noun, or for a whole command.
NOUN_WORDS: Mapping[str, str] = {
    "consultation": "video",
    "teleconsultation": "video",
    "conversation": "chat",
    "patient": "customer",
    "client": "customer",
    "contact": "customer",
    "automation": "rule",
    "notification": "rule",
    "figure": "kpi",
    "chart": "kpi",
    "slot": "video slots",
    "reminder": "video reminders",
    "preference": "customer prefs",
    "prefs": "customer prefs",
    "no-show": "noshow",
    "no-shows": "noshow",
    # German
    "videosprechstunde": "video",
    "videotermin": "video",
    "sprechstunde": "video",
    "kampagne": "campaign",
    "vorlage": "template",
    "bericht": "report",
    "regel": "rule",
    "gespräch": "chat",
    "unterhaltung": "chat",
    "patientin": "customer",
    "kunde": "customer",
    "kundin": "customer",
    "nachricht": "send",
}
#: Everyday verbs, and the command verbs each may mean, in order of preference.
VERB_WORDS: Mapping[str, tuple[str, ...]] = {
    **dict.fromkeys(("create", "make", "write", "draft", "add", "set", "prepare"), ("new",)),
    **dict.fromkeys(("send", "launch", "start", "run", "go"), ("launch", "run")),
    **dict.fromkeys(("book", "arrange"), ("book",)),
    "schedule": ("schedule", "book"),
    "plan": ("new", "book"),
    **dict.fromkeys(("move", "change", "postpone", "reschedule"), ("reschedule",)),
    **dict.fromkeys(("cancel", "delete", "remove", "stop"), ("cancel", "unschedule", "disable", "pause")),
    **dict.fromkeys(("pause", "hold"), ("pause",)),
    **dict.fromkeys(("resume", "continue", "restart", "unpause"), ("resume",)),
    **dict.fromkeys(
        ("see", "show", "view", "list", "find", "look", "get", "search"), ("list", "show", "find")
    ),
    **dict.fromkeys(("check", "track", "monitor", "follow"), ("status", "show", "list")),
    **dict.fromkeys(("preview", "test", "try"), ("preview",)),
    **dict.fromkeys(("assign", "give", "hand", "transfer", "reassign"), ("assign",)),
    **dict.fromkeys(("close", "resolve", "finish", "end"), ("resolve",)),
    **dict.fromkeys(("open", "answer", "reply", "join", "take", "pick"), ("open",)),
    **dict.fromkeys(("snooze", "defer"), ("snooze",)),
    **dict.fromkeys(("enable", "activate", "turn", "switch"), ("enable",)),  # "turn off": see _verbs_of
    **dict.fromkeys(("disable", "deactivate"), ("disable",)),
    **dict.fromkeys(("save", "keep", "store"), ("save",)),
    "unschedule": ("unschedule",),
    "reopen": ("reopen",),
    "rebook": ("rebook",),
    "remind": ("reminders",),
    # German, as typed after "wie kann ich …" (the infinitive) or "wie … ich" (the first person)
    **dict.fromkeys(("buchen", "buche", "vereinbaren", "vereinbare"), ("book",)),
    **dict.fromkeys(("senden", "sende", "versenden", "versende", "schicken", "schicke"), ("launch", "run")),
    **dict.fromkeys(("starten", "starte"), ("launch", "new")),
    **dict.fromkeys(("erstellen", "erstelle", "anlegen", "lege"), ("new",)),
    **dict.fromkeys(("absagen", "sage", "stornieren", "storniere", "abbrechen", "breche"), ("cancel",)),
    **dict.fromkeys(("verschieben", "verschiebe"), ("reschedule",)),
    **dict.fromkeys(("pausieren", "pausiere", "anhalten", "halte"), ("pause",)),
    **dict.fromkeys(("zuweisen", "weise"), ("assign",)),
    **dict.fromkeys(("schließen", "schließe", "beenden", "beende"), ("resolve",)),
    **dict.fromkeys(("einschalten", "aktivieren", "aktiviere", "schalte"), ("enable",)),
    **dict.fromkeys(("ausschalten", "abschalten", "deaktivieren", "deaktiviere"), ("disable",)),
    **dict.fromkeys(("speichern", "speichere"), ("save",)),
    **dict.fromkeys(("sehen", "sehe", "anzeigen", "zeige"), ("list", "show")),
    **dict.fromkeys(("finden", "finde", "suchen", "suche"), ("find", "list", "show")),
}


#: Verbs that only look (a how-to question with one of them and a figure asks for the figure: "how do I see
#: the no-show rate this month?"); every other verb asks to do something.
LOOKING = frozenset(
    {"see", "show", "view", "list", "find", "look", "get", "search", "check", "track", "monitor", "follow"}
    | {"sehen", "sehe", "anzeigen", "zeige", "finden", "finde", "suchen", "suche"}
)
#: "turn off an automation", "schalte … aus": the word that makes "turn" and "schalte" mean disable.
OFF = frozenset({"off", "aus"})
#: "mark a chat as done", "als erledigt markieren": the words that make "mark" mean resolve.
MARK = frozenset({"mark", "markieren", "markiere"})
DONE = frozenset({"done", "resolved", "closed", "finished", "complete", "completed", "erledigt"})


#: "how many", "wie viele": a count asked for inside a how-to question ("how do I see how many messages
#: we send per day?"), whatever verbs follow.
COUNTING = re.compile(r"\b(?:how\s+many|how\s+much|wie\s+viele?)\b", re.IGNORECASE)


def names_an_action(words: Iterable[str]) -> bool:
    """Whether any of `words` asks to do something (book, send, cancel, …) rather than to look."""
    return any(word in VERB_WORDS and word not in LOOKING for word in words)


def asks_how_to(text: str) -> bool:
    """Whether `text` asks how to do something ("how do I …", "how to …")."""
    return HOW_TO.match(text) is not None


def how_to_topic(text: str) -> str | None:
    """The command (or command noun) a how-to question asks about, for `help`; None when `text` is no how-to
    question or names no command."""
    found = HOW_TO.match(text)
    if found is None:
        return None
    words = [word for word in (normalise(token) for token in tokenise(text[found.end() :])) if word]
    named: list[str] = []
    for word in words:
        noun = _named_by(word)
        if noun is not None and noun not in named:
            named.append(noun)
    nouns = [noun for noun in named if noun in NOUNS and noun not in BY_NAME]
    # "close open chats": "open" says which conversations, it is no verb there ("how do I open chats": it is).
    which = {index - 1 for index in adjective_states(["i", *words])}  # what follows "how do I" is the verb
    words = [word for index, word in enumerate(words) if index not in which]
    for noun in nouns:
        own = verbs_of(noun)
        # Its own verbs first, wherever they are ("see the delivery status of campaign spring" is `status`),
        # then the everyday ones, in the order typed.
        for verb in [word for word in words if word in own] + [v for w in words for v in _verbs_of(w, words)]:
            if verb in own:
                return f"{noun} {verb}"
    whole = [name for name in named if name in BY_NAME]
    if whole:
        return whole[0]
    return nouns[0] if nouns else None


def _verbs_of(word: str, words: list[str]) -> tuple[str, ...]:
    """The command verbs an everyday verb may mean, in the question's words ("turn … off" disables, "mark …
    as done" resolves)."""
    if word in ("turn", "switch", "schalte") and OFF & set(words):
        return ("disable",)
    if word in MARK and DONE & set(words):
        return ("resolve",)
    return VERB_WORDS.get(word, ())


def _named_by(word: str) -> str | None:
    """The command noun (or whole command) `word` names: its own name, singular or plural, or an
    everyday word for it."""
    for form in (
        word,
        word.removesuffix("s"),
        word.removesuffix("es"),
        word.removesuffix("n"),
        word.removesuffix("en"),
    ):
        if form in NOUN_WORDS:
            return NOUN_WORDS[form]
        if form in NOUNS:
            return form
    return None
