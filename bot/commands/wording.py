"""How managers really type, rewritten into the plain English the question reader knows.

Shorthand ("yday", "prev mth", "appts", "vs LY"), everyday words ("takings", "patients", "how quickly do
we reply") and German ("Umsatz letzten Monat nach Kanal") are rewritten word for word, longest phrase
first, before the question is read. Deterministic: the same words always give the same reading. Month
names in German come from Babel's CLDR data, so "März", "Mai" and "Dez." read like their English names.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from functools import lru_cache

from babel.dates import get_day_names, get_month_names

#: The things a ranking ranks ("top 3 clinics", "which campaign had the most …"; not "best practice", "top
#: type", nor a day or a month: "which day had the most bookings" is the figure per day). Singular forms;
#: "countrie" is how "countries" reads without its "s". bot/commands/questions.py reads rankings with it too.
RANKED = frozenset(
    {"clinic", "location", "branch", "campaign", "channel", "service", "treatment", "doctor", "staff"}
    | {"agent", "clinician", "country", "countrie", "template", "provider", "segment", "store", "city"}
)
_RANKED = "|".join(f"{word}(?:e?s)?" for word in sorted(RANKED, key=len, reverse=True))

#: (pattern, replacement), applied in order to lower-cased text; patterns are whole words or phrases.
_PHRASES: tuple[tuple[str, str], ...] = (
    # --- time breakdowns said in German ("pro Tag", "nach Monat") before "nach"/"pro" become by/per ------
    (r"(?:pro|je|nach|per)\s+tag", " per day "),
    (r"(?:pro|je|nach|per)\s+woche", " per week "),
    (r"(?:pro|je|nach|per)\s+monat", " per month "),
    (r"(?:pro|je|nach|per)\s+quartal", " per quarter "),
    (r"(?:pro|je|nach|per)\s+stunde", " per hour "),
    (r"seit\s+(?:monatsanfang|monatsbeginn|anfang\s+des\s+monats|beginn\s+des\s+monats)", " this month "),
    (r"seit\s+(?:wochenanfang|wochenbeginn|anfang\s+der\s+woche)", " this week "),
    (r"seit\s+(?:quartalsanfang|quartalsbeginn|anfang\s+des\s+quartals)", " this quarter "),
    (r"seit\s+(?:anfang|beginn)", " since "),
    (r"(?:im\s+)?(?:ersten|erstes|erste)\s+halbjahr|first\s+half(?:\s+of\s+the\s+year)?", " h1 "),
    (r"(?:im\s+)?(?:zweiten|zweites|zweite)\s+halbjahr|second\s+half(?:\s+of\s+the\s+year)?", " h2 "),
    (r"(?:in\s+(?:der\s+)?)?(?:kw|cw|calendar\s+week|kalenderwoche)\s*(\d{1,2})", r" week \1 "),
    (r"morgen", " tomorrow "),
    (r"heuer", " this year "),
    (r"jänner|jaenner", " january "),
    (r"(?:im\s+)?([1-4])\.?\s*quartal", r" q\1 "),
    (r"verkaufskan(?:al|äle|älen)", " sales channel "),
    (r"fehlgeschlagen", " failed "),
    (r"gekostet|kosteten|kostet", " cost "),
    (r"konvertiert|konversion(?:en)?", " conversion "),
    (r"voraussichtlich|prognostiziert|erwartet", " forecast "),
    (r"z(?:ü|u|ue)ri", " zürich "),
    # --- German comparisons first: "im Vergleich zum Vorjahr" is a comparison, not the period ---------
    (
        r"(?:im\s+vergleich\s+zu(?:m|r)?|verglichen\s+mit|gegenüber|ggü\.?|vs\.?|versus)\s+"
        r"(?:dem\s+|der\s+)?(?:vorjahr(?:eszeitraum)?|vorjahreszeitraum|letzten\s+jahr)",
        " vs last year ",
    ),
    (
        r"(?:im\s+vergleich\s+zu(?:m|r)?|verglichen\s+mit|gegenüber|ggü\.?)\s+(?:dem\s+)?vormonat",
        " vs last month ",
    ),
    (
        r"(?:im\s+vergleich\s+zu(?:m|r)?|verglichen\s+mit|gegenüber|ggü\.?)\s+(?:der\s+)?vorwoche",
        " vs last week ",
    ),
    (
        r"(?:im\s+vergleich\s+zu(?:m|r)?|verglichen\s+mit|gegenüber|ggü\.?)\s+(?:dem\s+)?vorquartal",
        " vs last quarter ",
    ),
    (
        r"(?:im\s+vergleich\s+zu(?:m|r)?|verglichen\s+mit|gegenüber|ggü\.?)\s+(?:der\s+)?vorperiode",
        " vs previous ",
    ),
    # "yesterday vs the day before": the day just before; "… vs the week/month/quarter/year before" is that
    # unit's comparison, as "vs last week" … "vs last year" are.
    (
        r"(?:vs\.?|versus|compared\s+(?:to|with)|against)\s+(?:the\s+)?day\s+before(?!\s+(?:yesterday|last))",
        " vs previous ",
    ),
    (
        r"(?:vs\.?|versus|compared\s+(?:to|with)|against)\s+(?:the\s+)?(week|month|quarter|year)\s+before"
        r"(?!\s+last)",
        r" vs last \1 ",
    ),
    (r"(?:vs\.?|versus)\s+vormonat", " vs last month "),
    (r"(?:vs\.?|versus)\s+vorwoche", " vs last week "),
    (r"(?:vs\.?|versus)\s+vorquartal", " vs last quarter "),
    (r"(?:im\s+vergleich\s+zu(?:m|r)?|verglichen\s+mit|gegenüber|ggü\.?)", " vs "),
    # --- "same time last year" is a comparison, never the period "last year" ---------------------------
    (
        r"(?:(?:vs\.?|versus|compared\s+(?:to|with)|against)\s+)?(?:the\s+)?same\s+"
        r"(?:time|days|day|period|dates|week|month|quarter|stretch)\s+(?:last\s+year|a\s+year\s+ago|the\s+year\s+before)",
        " vs last year ",
    ),
    (r"(?:vs\.?|versus|compared\s+(?:to|with)|against)\s+(?:ly|py|prior\s+year)", " vs last year "),
    (r"(?:vs\.?|versus|compared\s+(?:to|with)|against)\s+(?:lm|pm)", " vs last month "),
    (r"wow|w/w", " week over week "),
    # --- German periods --------------------------------------------------------------------------------
    (r"seit\s+jahres(?:beginn|anfang)|im\s+laufenden\s+jahr|bisher\s+dieses\s+jahr", " ytd "),
    (r"(?:in\s+)?(?:diese[rnms]?)\s+woche", " this week "),
    (r"(?:in\s+)?(?:letzte[rnms]?|vergangene[rnms]?|vorige[rnms]?)\s+woche|vorwoche", " last week "),
    (r"(?:in\s+)?(?:diese[rnms]?)\s+monat", " this month "),
    (r"(?:im\s+)?(?:letzte[rnms]?|vergangene[rnms]?|vorige[rnms]?)\s+monat|vormonat", " last month "),
    (r"(?:in\s+)?(?:diese[rnms]?)\s+quartal", " this quarter "),
    (r"(?:im\s+)?(?:letzte[rnms]?|vergangene[rnms]?|vorige[rnms]?)\s+quartal|vorquartal", " last quarter "),
    (r"(?:in\s+)?(?:diese[rnms]?)\s+jahr", " this year "),
    (r"(?:im\s+)?(?:letzte[rnms]?|vergangene[rnms]?|vorige[rnms]?)\s+jahr|vorjahr", " last year "),
    (r"(?:in\s+den\s+)?(?:letzte[nr]?|vergangene[nr]?)\s+(\d{1,3})\s+tage[n]?", r" last \1 days "),
    (r"(?:in\s+den\s+)?(?:letzte[nr]?|vergangene[nr]?)\s+(\d{1,3})\s+wochen", r" last \1 weeks "),
    (r"(?:in\s+den\s+)?(?:letzte[nr]?|vergangene[nr]?)\s+(\d{1,3})\s+monate[n]?", r" last \1 months "),
    (r"(?:am\s+)?(?:letzten\s+|vergangenen\s+)?wochenende", " over the weekend "),
    (r"vorgestern", " the day before yesterday "),
    (r"gestern", " yesterday "),
    (r"heute", " today "),
    (r"nächste[nrms]?\s+woche", " next week "),
    (r"nächste[nrms]?\s+monat", " next month "),
    (r"vom\s+(\d{1,2})\.?\s+bis\s+(?:zum\s+)?(\d{1,2})\.", r" from the \1 to the \2 "),
    (r"(\d{1,2})\.(?=\s*[a-zäöü])", r"\1 "),  # "3. Oktober" -> "3 oktober"
    (
        r"(?:letzten|letzter|vergangenen|vorigen)\s+(?=(?:montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonntag)\b)",
        " last ",
    ),
    (r"am\s+(?=(?:montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonntag)\b)", " on "),
    (r"seit", " since "),
    (r"zwischen", " between "),
    # --- German metric words -----------------------------------------------------------------------------
    (r"kampagnen[- ]?umsatz", " campaign revenue "),
    (r"kampagnen[- ]?konversion(?:srate)?", " campaign conversion "),
    (r"durchschnittliche[rnms]?\s+bestellwert|warenkorbwert|warenkorb", " average order value "),
    (r"kommunikationskosten|nachrichtenkosten|versandkosten|messaging\s+kosten", " messaging cost "),
    (r"ausgegeben|bezahlt", " spend "),
    (r"gelesene[nr]?", " read "),
    (r"zugestellte[nr]?", " delivered "),
    (r"fehlgeschlagene[nr]?", " failed "),
    # "… Nachrichten haben wir letzte Woche verschickt", "… wurden letzte Woche gesendet": the verb comes
    # last in German, after the period, which stays where it is.
    (
        r"(?:haben|hatten)\s+wir\s+(.*?)\s*(?:verschickt|versendet|gesendet|geschickt|rausgeschickt)\b",
        r" sent \1 ",
    ),
    (r"(?:wurden|sind)\s+(.*?)\s*(?:verschickt|versendet|gesendet|geschickt)(?:\s+worden)?\b", r" sent \1 "),
    (r"(?:wurden|sind)\s+(.*?)\s*zugestellt(?:\s+worden)?\b", r" delivered \1 "),
    (r"(?:wurden|sind)\s+(.*?)\s*gelesen(?:\s+worden)?\b", r" read \1 "),
    # "gesendete Nachrichten" before "gesendete" alone: "sent messages" would leave "messages" unread.
    (r"(?:gesendete|versendete|verschickte)\s+nachrichten", " messages sent "),
    (r"gesendete[nr]?|versendete[nr]?|verschickte[nr]?", " sent "),
    (r"telefon\w*", " phone "),
    (r"laser\w+", " laser "),
    (r"vor\s+ort\s+termine|präsenztermine", " in person appointments "),
    (r"video\s*termine", " video appointments "),
    (
        r"(?:wie\s+)?schnell\s+antworten\s+wir|wie\s+schnell\s+(?:wird|werden)\s+\w+\s+beantwortet",
        " first response time ",
    ),
    (r"währungen|währung", " currency "),
    (r"anbietern|anbieter|provider", " provider "),
    (r"kategorien|kategorie", " category "),
    (r"umsatz|umsätze|erlöse?|einnahmen", " revenue "),
    (r"bestellungen|aufträge", " orders "),
    (r"neukunden|neue\s+kunden|neue\s+patient(?:en|innen)", " new customers "),
    (r"aktive\s+kunden|aktive\s+patient(?:en|innen)", " active customers "),
    (r"wiederkehrende\s+kunden|stammkunden|bestandskunden", " returning customers "),
    (r"abwanderung(?:srate)?|kündigungsrate|churn[- ]?rate", " churn rate "),
    (r"no[- ]?show[- ]?(?:quote|rate)|nichterscheinen(?:squote)?|ausfallquote", " no show rate "),
    (r"video[- ]?(?:sprechstunden?|konsultationen|termine|beratungen)", " video consultations "),
    (r"termine[n]?|termin|buchungen", " appointments "),
    (r"zustell(?:rate|quote)", " delivery rate "),
    (r"antwort(?:rate|quote)", " reply rate "),
    (r"abmelde(?:rate|quote)", " opt out rate "),
    (r"abmeldungen", " unsubscribes "),
    (r"(?:erste\s+)?(?:antwort|reaktions)zeit|erst(?:antwort|reaktion)szeit", " first response time "),
    (r"lösungszeit|bearbeitungszeit|bearbeitungsdauer", " resolution time "),
    (r"(?:kunden)?zufriedenheit", " satisfaction "),
    (r"kosten\s+pro\s+nachricht|stückkosten", " cost per message "),
    (r"(?:versand)?kosten", " messaging cost "),
    (r"versand", " messages sent "),
    (r"zugestellte\s+nachrichten", " messages delivered "),
    (r"gelesene\s+nachrichten", " messages read "),
    (r"fehlgeschlagene\s+nachrichten", " messages failed "),
    # "eingegangene Nachrichten", "wie viele Nachrichten haben wir heute bekommen": what customers wrote us.
    (r"(?:eingegangene|empfangene|erhaltene|eingehende)\s+nachrichten", " messages received "),
    (r"nachrichten\b(.{0,40}?)\b(?:bekommen|erhalten|empfangen|eingegangen)\b", r" messages received \1 "),
    (r"nachrichten", " messages "),
    (r"kunden|patient(?:en|innen)", " customers "),
    # --- German breakdowns and fillers ---------------------------------------------------------------
    (r"aufgeschlüsselt\s+nach|aufgeteilt\s+nach|nach", " by "),
    (r"pro|je", " per "),
    (r"standorte?n?|kliniken|klinik|praxen|praxis|filialen?", " clinic "),
    (r"kanälen|kanäle|kanal", " channel "),
    (r"ländern|länder|land", " country "),
    (r"dienstleistungen|leistungen|behandlungen|behandlung|leistung", " service "),
    (r"mitarbeiter(?:innen)?|ärzte|ärztin(?:nen)?|arzt", " staff "),
    (r"terminart|art\s+des\s+termins", " kind "),
    (r"kampagnen|kampagne", " campaign "),
    (r"vorlagen|vorlage", " template "),
    # "welche Kampagne hatte den meisten Umsatz": once its noun reads in English, a ranking as in English.
    # A period may stand between ("welche Klinik hatte letzte Woche die meisten Termine"): it is kept.
    (
        rf"welche[rsnm]?\s+({_RANKED})\s+(?:hatte|hat|brachte|bringt|machte|macht|erzielte|erzielt)\s+"
        r"((?:\S+\s+){0,3}?)(?:den|die|das)?\s*(?:meisten|meiste|höchsten|höchste|größten|größte|besten|beste)",
        r" \2 top 3 \1 by ",
    ),
    (rf"welche[rsnm]?\s+({_RANKED})\s+(?:lief|war|ist|läuft)\s+am\s+besten", r" top 3 \1 "),
    (r"täglich", " daily "),
    (r"wöchentlich", " weekly "),
    (r"monatlich", " monthly "),
    (r"im", " in "),
    (r"und", " and "),
    (r"bis", " to "),
    # --- English shorthand and everyday words ------------------------------------------------------
    (r"yday|yest|ystrdy", " yesterday "),
    (r"e\s+mails", " emails "),
    (r"e\s+mail", " email "),
    (r"click\s+through(?:\s+rate)?|click\s+rate", " clicks "),
    (r"mtd|month\s+to\s+date", " this month "),
    (r"wtd|week\s+to\s+date", " this week "),
    (r"qtd|quarter\s+to\s+date", " this quarter "),
    (r"prev(?:ious)?\.?", " previous "),
    (r"mths?|mnths?", " month "),
    (r"wks?", " week "),
    (r"qtrs?", " quarter "),
    (r"yrs?", " year "),
    (r"no[- ]?show\s*(?:%|pct|percent(?:age)?)|noshows?|no[- ]?show\s+rate", " no show rate "),
    (r"appts?|apts|appointmnets|appointmens|apointments?", " appointments "),
    (r"rev|takings|turn\s+over", " revenue "),
    (r"how\s+much\s+(?:money\s+)?(?:did|have)\s+we\s+(?:make|made|take|taken|earn|earned)", " revenue "),
    (r"(?:our|the)\s+take", " revenue "),
    (r"msgs", " messages "),
    (r"msg", " message "),
    (r"unsubs?|unsubscribed|opted\s+out|opt(?:ing)?[- ]outs?", " unsubscribes "),
    # "video consultations that were no-shows", "video consultation no-shows": the no-show rate of video
    # consultations (its count beside it).
    (
        r"video\s+(?:consultations?|calls?|appointments?|sprechstunden)\s+(?:(?:that\s+|which\s+)?(?:were|was|waren|war)\s+"
        r"(?:a\s+)?)?no[- ]?shows?",
        " no show rate for video ",
    ),
    (
        r"(?:how\s+)?(?:quickly|quick|fast)\s+(?:do|did|does)\s+(?:we|agents|staff|the\s+team)\s+(?:reply|respond|answer)",
        " first response time ",
    ),
    (
        r"(?:how\s+long\s+(?:does\s+it\s+take\s+|do\s+we\s+take\s+|did\s+it\s+take\s+)?to\s+resolve|time\s+to\s+resolve)",
        " resolution time ",
    ),
    (r"avg\.?|av\.", " average "),
    (
        r"(?:can\s+you\s+)?project(?:ed|ion|ions)?|will\s+(?:we|it|there|revenue|sales|orders)|we\s*'?ll|going\s+to\s+(?:get|make|have|be)",
        " forecast ",
    ),
    (r"(?:two|three|four|2|3|4)\s+years\s+(?:ago|before|earlier)", " years earlier "),
    # "which clinic had the most revenue": a ranking, the leader first with the next two beside it; "which day
    # had the most bookings" (no thing a ranking ranks), and the lowest or worst, are the split below.
    (
        rf"which\s+({_RANKED})\s+(?:had|has|have|brought|brings|made|makes|got|gets|earned|generated|did|does)\s+"
        r"(?:the\s+)?(?:most|highest|best|biggest|largest|greatest)(?:\s+in)?",
        r" top 3 \1 by ",
    ),
    (rf"which\s+({_RANKED})\s+(?:did|does|performed|performs|worked|works)\s+best", r" top 3 \1 "),
    # "which clinic is busiest this month": the most appointments (busy is booked, not revenue).
    (
        rf"(?:which|what)\s+(?:is\s+|was\s+)?(?:the\s+|our\s+)?busiest\s+({_RANKED})"
        rf"|which\s+({_RANKED})\s+(?:is|was|are|were|has\s+been)\s+(?:the\s+)?busiest",
        r" top 3 \1\2 by appointments ",
    ),
    (rf"what\s+(?:was|is)\s+(?:our|the)\s+best\s+({_RANKED})", r" top 3 \1 "),
    (
        r"which\s+(\w+)\s+(?:has|had|have|did|does|got|gets|is|was)?\s*(?:the\s+)?(?:highest|lowest|most|least|best|worst|biggest|fewest)",
        r" by \1 ",
    ),
    (
        r"(?:how\s+)?(?:quickly|quick|fast)\s+(?:are|were|is)\s+(?:we|agents|staff|the\s+team)\s+(?:replying|responding|answering)",
        " first response time ",
    ),
    (
        r"how\s+long\s+(?:does|did|do)\s+(\w+(?:\s+\w+)?)\s+take\s+to\s+(?:resolve|close|solve)",
        r" resolution time \1 ",
    ),
    (r"how\s+much\s+did\s+(\w+(?:\s+\w+)?)\s+(?:take|make|earn|bring\s+in|turn\s+over)", r" revenue \1 "),
    (
        r"(?:how\s+)?(?:quickly|quick|fast)\s+(?:do|did|does)\s+(\w+)\s+(?:reply|respond|answer)",
        r" first response time \1 ",
    ),
    (
        r"how\s+long\s+(?:does|did|do)\s+it\s+take\s+(?:us\s+)?to\s+(?:answer|reply|respond)(?:\s+to)?",
        " first response time ",
    ),
    (
        r"how\s+(?:happy|satisfied)\s+(?:were|are|was|is)\s+(?:our\s+)?(?:customers|patients|clients|people)",
        " satisfaction ",
    ),
    (
        r"(?:customers|patients|clients)\s+(?:who\s+|that\s+)?(?:bought|purchased|ordered|shopped)(?:\s+something|\s+anything)?",
        " active customers ",
    ),
    (
        r"(?:customers|patients|clients)\s+(?:who\s+|that\s+)?(?:came|come|coming)\s+back|(?:customers|patients|clients)\s+(?:who\s+)?returned",
        " returning customers ",
    ),
    (r"(?:did|do|have|has)\s+we\s+(?:send|sent)|we\s+sent", " sent "),
    (
        r"cost\s+(?:per|of\s+(?:a|one|each))\s+(sms|email|whatsapp|telegram)\s+(?:message|msg|text)",
        r" cost per message \1 ",
    ),
    (r"convert(?:ed|s)?", " conversion "),
    (r"patients|clients", " customers "),
    (r"for\s+each|for\s+every|across", " by "),
    (r"split\s+(?:up\s+)?by|broken\s+down\s+by|breakdown\s+by|grouped\s+by", " by "),
    (r"appointment\s+(?:type|kind)s?|type\s+of\s+appointment|visit\s+type", " kind "),
    (r"doctors?|drs|practitioners?|clinicians?", " staff "),
    (r"locations|clinics|sites|branches|practices", " clinic "),
    (r"channels", " channel "),
    (r"countries", " country "),
)


_ENGLISH_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
                   "october", "november", "december")  # fmt: skip


def _german_date(match: re.Match[str]) -> str:
    day, month, year = int(match.group(1)), int(match.group(2)), match.group(3)
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return match.group(0)
    return f" {day} {_ENGLISH_MONTHS[month - 1]}{' ' + year if year else ''} "


@lru_cache(maxsize=1)
def _months() -> tuple[tuple[str, str], ...]:
    """German month and weekday names and abbreviations (Babel's CLDR data) mapped to the English names."""
    english = get_month_names("wide", locale="en")
    pairs: dict[str, str] = {}
    for width in ("wide", "abbreviated"):
        for number, name in get_month_names(width, locale="de").items():
            word = name.lower().rstrip(".")
            if word != english[number].lower():
                pairs[word] = english[number].lower()
    english_days = get_day_names("wide", locale="en")
    for number, name in get_day_names("wide", locale="de").items():
        pairs[name.lower()] = english_days[number].lower()
    pairs.setdefault("maerz", "march")
    return tuple(sorted(pairs.items(), key=lambda pair: -len(pair[0])))


@lru_cache(maxsize=1)
def _rules() -> tuple[tuple[re.Pattern[str], str], ...]:
    rules = [
        (re.compile(rf"(?<![\w-])(?:{pattern})(?![\w-])"), replacement) for pattern, replacement in _PHRASES
    ]
    months = "|".join(re.escape(word) for word, _ in _months())
    rules.append((re.compile(rf"(?<![\w-])({months})\.?(?![\w-])"), "\0month"))
    return tuple(rules)


def plain_words(text: str) -> str:
    """`text` lower-cased, with shorthand, everyday words and German rewritten to the reader's English."""
    text = unicodedata.normalize("NFC", text)
    text = re.sub(r"\bUS\b|\bU\.S\.(?!\w)", " usa ", text)  # "US" in capitals is the country, "us" is us
    text = text.lower().replace("’", "'").replace("´", "'")
    text = re.sub(r"\b(what|that|it|how|who|there|where|here)'s\b", r"\1 is", text)
    text = re.sub(r"(\w)'s\b", r"\1", text)  # "Noah's chats" -> "noah chats"
    text = re.sub(r"(?<=[a-zäöüß])-(?=[a-zäöüß])", " ", text)  # "no-show", "WhatsApp-Nachrichten"
    text = re.sub(r"\b(\d{1,2})\.(\d{1,2})\.(\d{4})?", _german_date, text)  # "15.10." -> "15 october"
    german = dict(_months())
    for pattern, replacement in _rules():
        if replacement == "\0month":
            text = pattern.sub(lambda match: f" {german[match.group(1)]} ", text)
        else:
            text = pattern.sub(replacement, text)
    return " ".join(text.split())


def day_and_time(moment: datetime) -> str:
    """ "Mon 7 Dec 2026 08:00": the day without a leading zero, as the rest of Switchboard writes it."""
    return f"{moment:%a} {moment.day} {moment:%b %Y %H:%M}"
