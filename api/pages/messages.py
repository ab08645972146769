"""Communication pages for single messages: the message log with its detail, templates with live preview and
the automated notification rules that send them."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template

from api.pages import notices
from api.pages.common import (
    Formats,
    StaffPages,
    container_of,
    page,
    staff_of,
    table_download,
    utc_now,
    whole_number,
)
from api.pages.notification_rules import DONE as RULE_DONE
from api.pages.notification_rules import RuleRow
from domain.customers.importing import phones_typed
from domain.messages.pricing import priced_at_home
from domain.messages.sending import MessagePreview, MessageRequest, MessageRequestError, preview_message
from domain.messages.words import (
    CHAT_CHANNEL_WORDS,
    category_words,
    channel_words,
    direction_words,
    failure_words,
    provider_words,
    source_words,
    status_words,
)
from domain.notifications.use_cases import list_notification_rules
from domain.templates.model import TemplateRecord
from domain.video.links import hide_join_links
from domain.vocabulary import OUTBOUND_CHANNELS, Channel, Direction, MessageStatus, Role
from reports.exports import SheetRows
from storage.database import Database
from storage.queries.campaigns import CampaignOverview, campaign_overview
from storage.queries.customers import search_regions
from storage.queries.messages import (
    MessageLogFilters,
    MessageRecord,
    message_log,
    message_log_customers,
)
from storage.queries.messages import message_detail as stored_message_detail
from storage.queries.templates import all_template_variants

PAGE_SIZE = 50
#: The most messages one download holds (the newest that match the filters); narrower filters reach older ones.
EXPORT_ROWS = 10_000


#: At most this many customers are listed (and their messages shown) when a customer search matches several.
CUSTOMER_MATCHES = 20


@dataclass(frozen=True)
class MessageFilters:
    channel: str | None
    status: str | None
    direction: str | None
    customer_id: int | None
    customer: str
    before: int | None
    #: A campaign's address (slug): its messages, and the replies it drew.
    campaign: str | None = None

    @classmethod
    def parse(cls, params: dict[str, str]) -> MessageFilters:
        """Unknown or malformed filter values are dropped rather than failing the page."""

        def one_of(name: str, allowed: list[str]) -> str | None:
            value = params.get(name) or None
            return value if value in allowed else None

        def number(name: str) -> int | None:
            return whole_number((params.get(name) or "").strip().lstrip("#"))

        return cls(
            one_of("channel", [c.value for c in Channel]),
            one_of("status", [s.value for s in MessageStatus]),
            one_of("direction", [d.value for d in Direction]),
            number("customer_id"),
            " ".join((params.get("customer") or "").split())[:100],
            number("before"),
            campaign
            if re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,99}", campaign := params.get("campaign") or "")
            else None,
        )

    def kept(self) -> dict[str, str | int]:
        kept = {
            "channel": self.channel,
            "status": self.status,
            "direction": self.direction,
            "customer_id": self.customer_id,
            "customer": self.customer or None,
            "campaign": self.campaign,
        }
        return {k: v for k, v in kept.items() if v is not None}

    def for_log(self, customers: list[int] | None, campaign_id: int | None = None) -> MessageLogFilters:
        """The log query's filters; `customers` narrows to those a customer search found, `campaign_id` to
        the campaign `campaign` names."""
        return MessageLogFilters(
            self.channel, self.status, self.direction, self.customer_id, customers, self.before, campaign_id
        )

    def query_for(self, before: int) -> str:
        return urlencode({**self.kept(), "before": before})


@dataclass(frozen=True)
class CustomerMatch:
    id: int
    name: str


@dataclass(frozen=True)
class CustomerSearch:
    """Who the customer filter found: none, one, or several (at most CUSTOMER_MATCHES, `more` if there are others)."""

    text: str
    matches: tuple[CustomerMatch, ...]
    more: bool

    @property
    def ids(self) -> list[int]:
        return [m.id for m in self.matches]


async def find_customers(
    database: Database, text: str, *, whole_contacts: bool, region: str
) -> CustomerSearch:
    """Who the customer filter finds; staff who see contact details shortened find by whole ones only (a
    phone number read in the business's country, `region`)."""
    rows = await message_log_customers(
        database,
        text,
        CUSTOMER_MATCHES + 1,
        whole_contacts=whole_contacts,
        phones=phones_typed(text, await search_regions(database, region)),
    )
    matches = tuple(CustomerMatch(id, name) for id, name in rows[:CUSTOMER_MATCHES])
    return CustomerSearch(text, matches, len(rows) > CUSTOMER_MATCHES)


@dataclass(frozen=True)
class MessageRow:
    id: int
    created: str
    customer_id: int | None
    customer: str
    channel: str
    direction: str
    status: str
    status_label: str
    reason: str
    text: str


def _snippet(text: str | None, length: int = 90) -> str:
    """A list's glimpse of a message; a patient's join link is never shown in it (its page has it)."""
    text = hide_join_links(" ".join((text or "").split()))
    return text if len(text) <= length else text[: length - 1] + "…"


async def latest_messages(
    database: Database,
    filters: MessageFilters,
    formats: Formats,
    customers: list[int] | None = None,
    campaign_id: int | None = None,
    limit: int = PAGE_SIZE,
) -> tuple[list[MessageRow], int | None]:
    """Newest first by time (ties by id), one page; the second value is the `before` id of the next page.

    `customers` narrows to those customers (from a search). The next page starts after the last
    message shown, at its time and id, so paging stays exact however many messages share a moment.
    """
    rows = await message_log(database, filters.for_log(customers, campaign_id), limit + 1)
    shown = [
        MessageRow(
            m.id,
            formats.moment(m.created_at),
            m.customer_id,
            name or "—",
            channel_words(m.channel),
            direction_words(m.direction),
            m.status,
            status_words(m.status),
            failure_words(m.status_reason or m.error_code or ""),
            _snippet(m.subject or m.body),
        )
        for m, name in rows[:limit]
    ]
    return shown, (shown[-1].id if len(rows) > limit else None)


def why(message: MessageRecord) -> str:
    """The one sentence that says why a message is where it is."""
    explanation = message.explanation
    if isinstance(explanation, str) and explanation:
        return explanation
    if message.status_reason:
        reason = failure_words(message.status_reason)
        said = message.error_code and re.search(
            rf"(?<![\w.]){re.escape(message.error_code)}(?![\w.])", reason
        )
        code = f" (error {message.error_code})" if message.error_code and not said else ""
        return f"{status_words(message.status).capitalize()}: {reason}{code}."
    if message.error_code:
        return f"The provider reported error {message.error_code}."
    return f"Status: {status_words(message.status)}; nothing unusual was recorded."


async def message_detail(
    database: Database, message_id: int, formats: Formats, *, sees_join_links: bool = False
) -> dict[str, Any]:
    """`sees_join_links`: the reader acts on video consultations (agent and up), so a patient's join link in
    the text is shown whole; to a viewer it reads "/v/•••"."""
    found = await stored_message_detail(database, message_id)
    if found is None:
        raise NotFoundException(f"There is no message {message_id}.")
    message, customer, template = found.message, found.customer, found.template
    facts = [
        ("Customer", f"#{customer[0]} {customer[1]}" if customer else "—"),
        ("Channel", f"{channel_words(message.channel)} through {provider_words(message.provider)}"),
        ("Direction", direction_words(message.direction)),
        (
            "Source",
            source_words(message.source) + (f" ({found.campaign_slug})" if found.campaign_slug else ""),
        ),
        ("Category", category_words(message.category)),
        ("Template", f"{template[0]} ({template[1]})" if template else "—"),
        ("Status", status_words(message.status)),
        ("Created", formats.moment(message.created_at)),
        ("Sent", formats.moment(message.sent_at)),
        ("Delivered", formats.moment(message.delivered_at)),
        ("Read", formats.moment(message.read_at)),
        ("Attempts", str(message.attempts)),
    ]
    if message.segments:
        facts.append(
            ("SMS", f"{message.segments} segment{'' if message.segments == 1 else 's'}, {message.encoding}")
        )
    if message.cost_micros is not None:
        facts.append(("Cost", formats.money_micros(message.cost_micros, found.currency)))
    history = [
        {
            "when": formats.moment(e.occurred_at),
            "status": e.status,
            "status_words": status_words(e.status),
            "source": e.source.replace("_", " "),
            "error_code": e.error_code or "",
            "detail": e.detail or "",
        }
        for e in found.history
    ]
    body = message.body or ""
    return {
        "message": message,
        "body": body if sees_join_links else hide_join_links(body),
        "customer_id": customer[0] if customer else None,
        "facts": facts,
        "history": history,
        "why": why(message),
    }


@dataclass(frozen=True)
class PreviewForm:
    template: str
    channel: str
    locale: str
    variables: str

    def variable_values(self) -> dict[str, str]:
        values = {}
        for number, line in enumerate(self.variables.splitlines(), start=1):
            if not line.strip():
                continue
            key, equals, value = line.partition("=")
            if not equals or not key.strip():
                raise MessageRequestError(f"line {number} is not key=value: {line.strip()[:60]!r}")
            values[key.strip()] = value.strip()
        return values


def _lines_for(declared: list[str], typed: str) -> str:
    """The values box for the chosen template: a line per variable it declares, with what was typed for it
    (switching templates keeps what still applies and drops the other template's names)."""
    given: dict[str, str] = {}
    unread: list[str] = []  # kept, so the preview says what is wrong with them
    for line in typed.splitlines():
        key, equals, value = line.partition("=")
        if equals and key.strip():
            given[key.strip()] = value.strip()
        elif line.strip():
            unread.append(line)
    return "\n".join([*(f"{name}={given.get(name, '')}" for name in declared), *unread])


async def template_variants(database: Database) -> dict[str, list[TemplateRecord]]:
    grouped: dict[str, list[TemplateRecord]] = defaultdict(list)
    for row in await all_template_variants(database):
        grouped[row.name].append(row)
    return dict(grouped)


async def notification_rule_rows(request: Request[Any, Any, Any]) -> list[RuleRow]:
    rules = await list_notification_rules(container_of(request).notification_uow(read_only=True))
    return [RuleRow.of(r) for r in rules]


async def template_preview(request: Request[Any, Any, Any], form: PreviewForm) -> MessagePreview:
    container = container_of(request)
    message = MessageRequest(
        customer_id=None,
        channel=Channel(form.channel) if form.channel else None,
        template=form.template,
        variables=form.variable_values(),
        locale=form.locale.strip() or None,
    )
    # No recipient: an SMS is priced as one to a number in the business's own country, as the bot's is.
    home = priced_at_home(container.settings.phone_region)
    return await preview_message(
        container.messaging_uow(), message, utc_now(), container.consent_policy(), home
    )


@dataclass(frozen=True)
class LogScope:
    """Whom and which campaign the filters name, as found in the database: the page and its downloads both."""

    search: CustomerSearch | None
    campaign: CampaignOverview | None
    #: The customers and campaign named were found (none named counts as found): messages may match.
    found: bool

    @property
    def customers(self) -> list[int] | None:
        return self.search.ids if self.search else None

    @property
    def campaign_id(self) -> int | None:
        return self.campaign.id if self.campaign else None


async def log_scope(
    database: Database, filters: MessageFilters, *, whole_contacts: bool, region: str
) -> LogScope:
    search = (
        await find_customers(database, filters.customer, whole_contacts=whole_contacts, region=region)
        if filters.customer
        else None
    )
    campaign = await campaign_overview(database, filters.campaign) if filters.campaign else None
    found = (search is None or bool(search.matches)) and (campaign is not None or not filters.campaign)
    return LogScope(search, campaign, found)


class MessagePages(StaffPages):
    @get("/communication/messages", name="messages")
    async def messages(self, request: Request[Any, Any, Any]) -> Template:
        filters = MessageFilters.parse(dict(request.query_params))
        database = container_of(request).database
        scope = await log_scope(
            database,
            filters,
            whole_contacts=staff_of(request).may(Role.AGENT),
            region=container_of(request).settings.phone_region,
        )
        rows, next_before = (
            await latest_messages(
                database,
                filters,
                Formats.of(request),
                customers=scope.customers,
                campaign_id=scope.campaign_id,
            )
            if scope.found
            else ([], None)
        )
        return page(
            request,
            "communication/messages.html",
            "communication",
            "messages",
            filters=filters,
            search=scope.search,
            campaign=scope.campaign,
            rows=rows,
            next_query=filters.query_for(next_before) if next_before else None,
            export_query=urlencode(filters.kept()),
            export_rows=f"{EXPORT_ROWS:,}",
            channels=[(c.value, channel_words(c.value)) for c in Channel],
            statuses=[(s.value, status_words(s.value)) for s in MessageStatus],
            directions=[(d.value, direction_words(d.value)) for d in Direction],
        )

    @get(["/communication/messages.csv", "/communication/messages.xlsx"], name="messages_export")
    async def messages_export(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        """The message log as filtered on the page, as CSV or XLSX: the newest EXPORT_ROWS messages, each
        with its whole text, times in the business's timezone."""
        filters = MessageFilters.parse(dict(request.query_params))
        database, formats = container_of(request).database, Formats.of(request)
        sees_join_links = staff_of(request).may(Role.AGENT)
        scope = await log_scope(
            database,
            filters,
            whole_contacts=sees_join_links,
            region=container_of(request).settings.phone_region,
        )
        rows = (
            await message_log(database, filters.for_log(scope.customers, scope.campaign_id), EXPORT_ROWS + 1)
            if scope.found
            else []
        )
        shown = [
            (
                f"{m.created_at.astimezone(ZoneInfo(formats.timezone)):%Y-%m-%d %H:%M:%S}",
                m.id,
                name or "",
                m.channel,
                m.direction,
                m.status,
                failure_words(m.status_reason or m.error_code or ""),
                m.subject or "",
                (m.body or "") if sees_join_links else hide_join_links(m.body or ""),
            )
            for m, name in rows[:EXPORT_ROWS]
        ]
        said = [
            f"{k} {v}"
            for k, v in (
                ("channel", filters.channel),
                ("status", filters.status),
                ("direction", filters.direction),
            )
            if v
        ]
        if filters.customer:
            said.append(f"customer “{filters.customer}”")
        if filters.customer_id:
            said.append(f"customer #{filters.customer_id}")
        if filters.campaign:
            said.append(f"campaign {filters.campaign}")
        how_many = f"The newest {EXPORT_ROWS:,}" if len(rows) > EXPORT_ROWS else f"All {len(shown):,}"
        footnote = (
            f"{how_many} messages{' with ' + ', '.join(said) if said else ''}, newest first; times in "
            f"{formats.timezone}; {formats.as_of()}."
        )
        sheet = SheetRows(
            "Messages",
            (
                f"Written ({formats.timezone})",
                "Message",
                "Customer",
                "Channel",
                "Direction",
                "Status",
                "Why",
                "Subject",
                "Text",
            ),
            tuple(shown),
            footnote,
        )
        return table_download(sheet, request.url.path.rpartition(".")[2], "messages")

    @get("/communication/messages/{message_id:int}", name="message")
    async def message(self, request: Request[Any, Any, Any], message_id: FromPath[int]) -> Template:
        detail = await message_detail(
            container_of(request).database,
            message_id,
            Formats.of(request),
            sees_join_links=staff_of(request).may(Role.AGENT),
        )
        return page(request, "communication/message.html", "communication", "messages", **detail)

    @get("/communication/templates", name="templates")
    async def templates(self, request: Request[Any, Any, Any]) -> Template:
        variants = await template_variants(container_of(request).database)
        params = request.query_params
        chosen = params.get("template") or next(iter(variants), "")
        declared = sorted({str(v) for t in variants.get(chosen, []) for v in t.variables})
        form = PreviewForm(
            template=chosen,
            channel=params.get("channel") or "",
            locale=params.get("locale") or "en",
            variables=_lines_for(declared, params.get("variables") or ""),
        )
        preview, error = None, None
        if "preview" in params and chosen:
            try:
                preview = await template_preview(request, form)
            except ValueError as problem:  # MessageRequestError, TemplateError and bad channel names
                error = str(problem)
        formats = Formats.of(request)
        return page(
            request,
            "communication/templates.html",
            "communication",
            "templates",
            variants=variants,
            channel_names=CHAT_CHANNEL_WORDS,
            form=form,
            channels=[c.value for c in OUTBOUND_CHANNELS],
            preview=preview,
            preview_cost=formats.money_micros(preview.estimated_cost_micros, preview.currency)
            if preview
            else None,
            error=error,
            rules=await notification_rule_rows(request),
            rule_done=RULE_DONE.get(str(notices.said(request).get("rule_done", ""))),
            may_edit=staff_of(request).may(Role.MANAGER),
        )
