"""The one entry point every front end calls: text in, a platform-neutral Reply out, never an exception.

parse -> permission check -> handler (which writes its audit entry in its own transaction) -> Reply.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from bot.commands.analyses import analysis_question
from bot.commands.campaigns import CampaignAction
from bot.commands.chats import LIST_USAGE
from bot.commands.context import CommandContext
from bot.commands.conversation_looks import (
    ASKING,
    STATES,
    conversation_look,
    names_conversations_in_a_state,
    what_conversations_are_not_kept_by,
    without_conversations,
)
from bot.commands.help import ShowHelp, show_help
from bot.commands.how_to import COUNTING, asks_how_to, how_to_topic, names_an_action
from bot.commands.kpi import known_values
from bot.commands.parsing import ParseError, closest, normalise, same_start, suggestions, tokenise
from bot.commands.questions import KNOWN_VALUES, Declined, names_a_metric, parse_question
from bot.commands.registry import BY_NAME, COMMANDS, DEFAULT_VERB, NOUNS, CommandSpec, verbs_of
from bot.commands.team import on_duty_question
from bot.replies import Button, Reply
from domain.staff import StaffIdentity
from domain.vocabulary import role_allows
from reports.everyday_names import metric_words, plain
from reports.metrics import REGISTRY
from reports.periods import zone

log = logging.getLogger(__name__)
MAX_INPUT = 2000
ALIASES = {
    "?": "help",
    "commands": "help",
    "menu": "help",
    "hello": "help",  # a greeting, the first thing many type to a bot
    "hi": "help",
    "hey": "help",
    "hallo": "help",
    "health": "status",
    "find": "customer find",
}


@dataclass(frozen=True)
class Parsed:
    """A command read from text: its table row and its typed arguments."""

    spec: CommandSpec[Any]
    command: Any


def match_command(words: list[str]) -> tuple[CommandSpec[Any], list[str]] | None:
    """The table row the first words name (forgiving typos and plurals) and the words after it."""
    if not words:
        return None
    first = normalise(words[0]) or words[0].strip()  # "?" alone is the alias of help, not an empty word
    if first in ALIASES:
        alias = ALIASES[first].split()
        words = [*alias, *words[1:]]
        first = alias[0]
    if first in BY_NAME:
        return BY_NAME[first], words[1:]
    noun = _noun_typed(first)
    if noun is None:
        return None
    if noun in BY_NAME:
        return BY_NAME[noun], words[1:]
    if (
        noun == "chat"
        and first != noun
        and len(words) >= 2
        and normalise(words[1]) in STATES
        and all(normalise(word) in ASKING for word in words[2:])
    ):
        return BY_NAME["chat list"], words[1:2]  # "chats open (now)" are the open ones; "chat open" opens one
    verbs = verbs_of(noun)
    second = normalise(words[1]) if len(words) > 1 else ""
    # "campaigns last month": "last" starts a period, it is no typo of `list`.
    verb = (
        closest(second, verbs, cutoff=0.75)
        if second and (second in verbs or second not in PERIOD_STARTS)
        else None
    )
    if verb is not None:
        return BY_NAME[f"{noun} {verb}"], words[2:]
    if noun in DEFAULT_VERB and (len(words) == 1 or noun == "customer"):
        return BY_NAME[f"{noun} {DEFAULT_VERB[noun]}"], words[1:]
    if noun == "campaign" and second in CAMPAIGN_RESULTS:  # "campaign performance last month"
        raise ParseError(
            "A campaign's results: `campaign status NAME`, or ask “how did the Black Friday campaign do?”. "
            "Campaigns side by side: “campaign revenue by campaign last month” or “delivery rate by campaign "
            "last month”.",
            "campaign status NAME",
        )
    raise ParseError(f"“{noun}” takes one of: {', '.join(verbs)}.", " | ".join(f"{noun} {v}" for v in verbs))


def _typed_command(text: str) -> bool:
    """Whether `text` starts with a command's name, its verb typed, even mistyped ("report save ROI", "reprot
    save ROI", "attribution last month"), which then reads the rest as that command's."""
    words = tokenise(text)
    try:
        matched = match_command(words)
    except ParseError:  # "campaign ROI last month": a noun without its verb; the question is read as asked
        return False
    if matched is None:
        return False
    spec, rest = matched
    # A one-word command ("attribution"), or a noun with its verb typed ("report save", "reprot save"); not a
    # noun that fell back to its usual verb ("customers retention": no `customer find` meant).
    return " " not in spec.name or len(words) - len(rest) >= 2


def parse(
    text: str, ctx: CommandContext, known: Mapping[str, Mapping[str, str]] | None = None
) -> Parsed | None:
    """The typed command `text` means, or None when it is neither a command nor a KPI question."""
    today = ctx.now().astimezone(zone(ctx.business_tz)).date()
    values = {**KNOWN_VALUES, **(known or {})}
    campaign = _campaign_asked_about(text, values.get("campaign", {}))
    if campaign is not None:
        return Parsed(BY_NAME["campaign status"], CampaignAction("status", campaign))
    analysis = analysis_question(text, today) if not _typed_command(text) else None
    if analysis is not None:  # "ROI last quarter", "Kosten gegen Umsatz", "retention by cohort this year"
        return Parsed(BY_NAME[analysis[0]], analysis[1])
    duty = on_duty_question(text, today, values.get("location", {}))
    if duty is not None:  # "who is on duty today?", "wer hat morgen Dienst?"
        return Parsed(BY_NAME["team"], duty)
    if asks_how_to(text):
        # "how do I book a video consultation?": the help of `video book`; "how do I see the no-show rate this
        # month?" asks for the figure; "how do I book an appointment?" (no command books one) for neither.
        topic = how_to_topic(text)
        try:
            question = parse_question(text, today, known=values, require_metric=False)
        except (ParseError, Declined):
            question = None
        if question is not None and names_a_metric(text):  # not a figure inferred from "chats", "sms"
            counting = COUNTING.search(text)
            if counting is not None and not names_an_action(
                text[: counting.start()].lower().split()
            ):  # "how do I see how many messages we send?": a count, as the reading says
                return Parsed(BY_NAME["kpi"], question)
            about = topic.split()[0] if topic else None
            if (
                not question.metric_guessed
                and not names_an_action(question.ignored)
                and not any(word.removesuffix("s") == about for word in question.ignored)
            ):  # "how do I see the no-show rate this month?", not "… the revenue report" (`report list`)
                return Parsed(BY_NAME["kpi"], question)
        if topic in (None, "chat") and names_conversations_in_a_state(text):
            topic = "chat list"  # "how do I see open chats": "open" says which, it is no verb here
        if topic is not None:
            return Parsed(BY_NAME["help"], ShowHelp(topic))
        if question is not None:
            return None  # the commands there are (not_understood)
    words = tokenise(text)
    try:
        matched = match_command(words)
    except ParseError:
        # "chats closed last week": conversations in a state, said the way the end of parse says it.
        about_conversations = _conversations(text, today)
        if about_conversations is not None:
            return about_conversations
        # "campaign revenue last month": a command's noun with no verb of its own, but a metric named in
        # the words; a named metric wins, so it is a KPI question rather than a wrong command.
        # "chats mine": no metric named, and the noun's usual command reads the words; it is that command.
        question = parse_question(text, today, known=values, require_metric=False)
        if question is not None and not question.metric_guessed:
            usual = None if names_a_metric(text) else _usual_command(words, today)
            return usual or Parsed(BY_NAME["kpi"], question)
        # "videos today", "videos next week": no figure either, and every word is one `video list` takes.
        usual = _usual_command(words, today, only_its_words=True)
        if usual is not None:
            return usual
        raise
    if matched is not None:
        spec, rest_words = matched
        typed = [normalise(w) for w in words[:2]]
        if " " in spec.name and spec.name.split()[-1] not in typed and len(words) > 1:
            # "customer churn last quarter": a noun whose verb was not typed, and a metric named; the metric wins.
            # A noun alone ("chats", "campaigns") is its command; with words its command reads ("chats
            # unassigned"), too; a figure inferred from it ("chats last week": the conversations) otherwise.
            try:
                question = parse_question(text, today, known=values, require_metric=False)
            except ParseError:
                question = None
            if question is not None and not question.metric_guessed:
                if names_a_metric(text):
                    return Parsed(BY_NAME["kpi"], question)
                try:
                    return Parsed(spec, spec.parse(rest_words, " ".join(rest_words), today))
                except ParseError:  # "chats unassigned" is no `chat assign`: `chat list unassigned`
                    return _usual_command(words, today) or Parsed(BY_NAME["kpi"], question)
        rest = " ".join(rest_words)
        try:
            return Parsed(spec, spec.parse(rest_words, rest, today))
        except ParseError as refused:
            # "no-show rate for video last month", "no-show rate": a one-word command ("noshow") leading a KPI
            # question whose metric is named and whose other words were all read (or that names a period);
            # the question wins over the command's usage line ("noshow soon" names no period and leaves
            # "soon" unread, so it stays the command with its usage, as does "noshow" alone). A command typed with its verb
            # ("video book … at 25:30") is a command whatever else it names.
            if " " in spec.name:
                raise
            try:
                question = parse_question(text, today, known=values, require_metric=False)
            except ParseError:
                raise refused from None
            if (
                question is not None
                and not question.metric_guessed
                and not (question.period_assumed and (question.ignored or not rest_words))
            ):
                return Parsed(BY_NAME["kpi"], question)
            raise
    about_conversations = _conversations(text, today)
    if about_conversations is not None:
        return about_conversations
    question = parse_question(text, today, known=values, require_metric=False)
    return Parsed(BY_NAME["kpi"], question) if question is not None else None


#: "how did the Black Friday campaign do?", "how is our vitamin D campaign going", "how did black friday perform"
_HOW_DID_IT_DO = re.compile(
    r"^\s*how(?:'s|\s+(?:did|does|is|was|has|are))\s+(?:the\s+|our\s+)?(?P<name>.+?)"
    r"\s+(?:do|doing|done|go|going|gone|perform|performing|performed|work|working|worked|land|landed)"
    r"(?:\s+so\s+far)?[\s?!.]*$",
    re.IGNORECASE,
)


#: The same in German: "wie lief die Black Friday Kampagne?", "wie läuft unsere Vitamin-D-Kampagne",
#: "wie hat die Black-Friday-Kampagne abgeschnitten?"
_WIE_LIEF_ES = re.compile(
    r"^\s*wie\s+(?:(?:lief|läuft|laeuft|ist|war)\s+(?:die\s+|unsere\s+)?(?P<name>.+?)(?:\s+(?:gelaufen|bisher))?"
    r"|hat\s+(?:die\s+|unsere\s+)?(?P<done>.+?)\s+(?:abgeschnitten|funktioniert|performt|gewirkt))"
    r"[\s?!.]*$",
    re.IGNORECASE,
)
#: "Kampagne" as the last word of a German campaign's name, or joined to it ("Black-Friday-Kampagne").
_KAMPAGNE = re.compile(r"[\s-]*kampagne$", re.IGNORECASE)


#: Words asking how campaigns did, which no `campaign` verb is: answered with where their figures are.
CAMPAIGN_RESULTS = frozenset(
    {"performance", "results", "result", "stats", "statistics", "figures", "numbers"}
)


def _campaign_asked_about(text: str, campaigns: Mapping[str, str]) -> str | None:
    """The slug of the campaign a "how did X do" question names; its status answers it."""
    german = _WIE_LIEF_ES.match(text)
    if german is not None:
        named = _KAMPAGNE.sub("", german.group("name") or german.group("done") or "")
        if named == (german.group("name") or german.group("done")):
            return None  # "wie lief der Umsatz": no campaign named
        said = plain(named.replace("-", " "))
        return campaigns.get(said) or campaigns.get(f"{said} campaign")
    match = _HOW_DID_IT_DO.match(text)
    if match is None:
        return None
    said = plain(match.group("name"))
    if not said.endswith("campaign") and not set(said.split()) - metric_words():
        # "how are bookings going", "how did revenue do": the figure, whatever campaigns are named.
        return None
    return campaigns.get(said) or campaigns.get(f"{said} campaign")


def _conversations(text: str, today: date) -> Parsed | None:
    """ "how many chats are open", "show me unassigned conversations": that queue of `chat list`, not chat
    messages sent nor "conversions"; narrowed further ("closed chats last week"), a ParseError saying what
    can be answered; None when `text` is no look at conversations or names a figure of them."""
    if names_a_metric(without_conversations(text)):
        return None  # "first response time of open chats"
    queue = conversation_look(text)
    if queue is not None:
        return Parsed(BY_NAME["chat list"], BY_NAME["chat list"].parse([queue], queue, today))
    unkept = what_conversations_are_not_kept_by(text)
    if unkept is not None:
        raise ParseError(unkept, LIST_USAGE)
    return None


def _noun_typed(word: str) -> str | None:
    """The command noun `word` is, allowing a typo that keeps its start: "show" is not `noshow`, "tchat"
    is `chat`."""
    return closest(word, [noun for noun in NOUNS if same_start(noun, word)], cutoff=0.8)


def _usual_command(words: list[str], today: date, *, only_its_words: bool = False) -> Parsed | None:
    """The noun's usual command (`chat list` for "chats") reading the words after it, if it can;
    `only_its_words`: only when each of them is a word its usage names ("today", "week", "mine")."""
    noun = _noun_typed(normalise(words[0]))
    if noun is None or noun not in DEFAULT_VERB:
        return None
    spec = BY_NAME[f"{noun} {DEFAULT_VERB[noun]}"]
    if len(words) > 1 and spec.usage.strip() == spec.name:
        return None  # `campaign list` takes no words: "campaign spring" would show the list, "spring" unread
    if only_its_words and not {normalise(word) for word in words[1:]} <= _option_words(spec):
        return None
    try:
        return Parsed(spec, spec.parse(words[1:], " ".join(words[1:]), today))
    except ParseError:
        return None


#: Words that start a period, never typos of a command's verb.
PERIOD_STARTS = frozenset(
    {"last", "this", "next", "past", "previous", "letzte", "letzten", "diese", "diesen"}
)


def _option_words(spec: CommandSpec[Any]) -> frozenset[str]:
    """The literal words a command's usage offers: "today", "week" and "mine" of `video list [today|week]
    [STAFF|mine]` (placeholders are upper case)."""
    return frozenset(re.findall(r"\b[a-z]+\b", spec.usage)) - set(spec.name.split())


#: How a question begins: such text that names no figure is answered with the figures there are, not with
#: commands that happen to look like its first word ("what's" is not "chat").
QUESTION_WORDS = frozenset(
    {"what", "what's", "whats", "how", "which", "who", "when", "where", "why", "is", "are", "was", "were"}
    | {"did", "do", "does", "can", "could", "will", "has", "have"}
)
#: German ones ("wie viele", "welche Kampagnen")...
GERMAN_QUESTION_WORDS = frozenset(
    {"wie", "wer", "welche", "welcher", "welches", "wann", "wo", "warum", "wieso", "gibt", "ist", "sind"}
)
#: ... of which these look like a command's typo ("sind 1234" is `send`): a question's start only in a sentence.
LIKE_A_COMMAND = frozenset({"ist", "sind", "wer"})
#: The figures a not-understood question is pointed to, with a question that reads each.
EXAMPLE_QUESTIONS = (
    ("revenue", "revenue last 30 days"),
    ("appointments", "appointments this week by location"),
    ("no_show_rate", "no-show rate this month"),
    ("messages_sent", "messages sent last week by channel"),
    ("delivery_rate", "delivery rate of whatsapp last 7 days"),
)


def reads_as_question(text: str) -> bool:
    words = tokenise(text)
    first = normalise(words[0]) if words else ""
    return (
        text.rstrip().endswith("?")
        or first in QUESTION_WORDS
        or (first in GERMAN_QUESTION_WORDS and (first not in LIKE_A_COMMAND or len(words) >= 3))
    )


def names_a_command(text: str) -> bool:
    """ "what templates are there", "is campaign spring running?": a question about something a command
    shows, which the command suggestions answer better than the figures."""
    words = {normalise(w) for w in tokenise(text)}
    return any(word in NOUNS or word.removesuffix("s") in NOUNS for word in words)


def not_understood(text: str, who: StaffIdentity) -> Reply:
    if asks_how_to(text):  # "how do I book an appointment?": no command does it, so the commands there are
        commands = show_help(ShowHelp(), who, COMMANDS)
        return replace(
            commands,
            text=f"I could not tell which command does what “{text[:80]}” asks. {commands.text} "
            "`help COMMAND` explains one.",
        )
    if reads_as_question(text) and not names_a_command(text):
        return figure_not_found(text)
    names = [s.name for s in COMMANDS if role_allows(who.role, s.role)]
    close = suggestions(text, names)
    listed = ", ".join(names)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    return Reply(
        f"I did not understand “{text[:80]}”.{hint} Commands: {listed}. Or ask, e.g. “revenue last 30 days”.",
        kind="suggestion",
        buttons=tuple(Button(name, f"help {name}") for name in close) or (Button("help", "help"),),
    )


def figure_not_found(text: str) -> Reply:
    """A question naming none of the figures kept: which ones there are, and questions that read them."""
    figures = [REGISTRY[name].label.lower() for name, _ in EXAMPLE_QUESTIONS if name in REGISTRY]
    asked = [question for name, question in EXAMPLE_QUESTIONS if name in REGISTRY]
    return Reply(
        f"I could not tell which figure “{text[:80]}” asks about. I answer questions about the business's "
        f"figures, such as {', '.join(figures[:-1])} and {figures[-1]}: try “{asked[0]}”. "
        "`help kpi` shows how to ask; `help` lists the commands.",
        kind="suggestion",
        buttons=(*(Button(question, question) for question in asked[:3]), Button("help kpi", "help kpi")),
    )


async def handle(text: str, who: StaffIdentity, ctx: CommandContext) -> Reply:
    """Run one staff command as `who`; every outcome, including failures, is a Reply."""
    text = (text or "").strip()
    if not text:
        return await handle("help", who, ctx)
    if len(text) > MAX_INPUT:
        return Reply(
            f"That is too long for a command ({len(text)} characters; at most {MAX_INPUT}).", kind="error"
        )
    try:
        # The clinics', services' and campaigns' own names (a new one at once; see kpi.known_values), so a
        # question naming them is read in one pass; without the database, questions are still read with the
        # fixed words.
        known = await known_values(ctx)
    except Exception as error:  # the lookup only sharpens the reading; it must not stop the command
        log.warning("could not read the names of clinics, services and campaigns: %s", error)
        known = {}
    try:
        parsed = parse(text, ctx, known)
    except Declined as refusal:
        return declined(refusal)
    except ParseError as error:
        usage = f"\nUsage: {error.usage}" if error.usage else ""
        return Reply(f"{error}{usage}", kind="error")
    except Exception:
        return _failure("parse", text, who)
    if parsed is None:
        return not_understood(text, who)
    needed = parsed.spec.required_role(parsed.command)
    if not role_allows(who.role, needed):
        return Reply(
            f"“{parsed.spec.name}” needs the {needed.value} role; you are {who.role.value}. Ask an admin if you need it.",
            title="Not allowed",
            kind="denied",
        )
    try:
        return await parsed.spec.run(parsed.command, who, ctx)
    except Declined as refusal:
        return declined(refusal)
    except ParseError as error:
        usage = f"\nUsage: {error.usage}" if error.usage else ""
        return Reply(f"{error}{usage}", kind="error")
    except Exception:
        return _failure(parsed.spec.name, text, who)


def declined(refusal: Declined) -> Reply:
    """A question read but not answerable as asked: why, and a button for the closest answer there is."""
    closest = refusal.closest
    buttons = (Button("Show the closest answer", closest.command_text()),) if closest else ()
    return Reply(str(refusal), title="I cannot answer that as asked", kind="suggestion", buttons=buttons)


def _failure(stage: str, text: str, who: StaffIdentity) -> Reply:
    incident = secrets.token_hex(4)
    log.exception(
        "command %s failed for %s via %s (incident %s): %r", stage, who.email, who.via, incident, text[:200]
    )
    return Reply(
        f"Sorry, something went wrong running that. Nothing was changed unless a reply said so. "
        f"(incident {incident}; the details are in the server log)",
        kind="error",
    )
