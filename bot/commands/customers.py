"""`customer find|show|prefs`: who a customer is, how to reach them, and why a message did not go out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from bot.commands.context import CommandContext
from bot.commands.masking import mask_email, mask_phone, spaced_phone
from bot.commands.parsing import ParseError, customer_id, take_flag
from bot.replies import Button, Field, Reply, Table
from domain.consent.said import business_cap_words, business_quiet_hours_words, cap_words
from domain.consent.sources import source_words
from domain.messages.words import channel_words
from domain.staff import StaffIdentity
from domain.vocabulary import OUTBOUND_CHANNELS, Role, role_allows
from storage.queries.customers import (
    ChannelConsent,
    CustomerProfile,
    customer_preferences,
    customer_profile,
    customers_matching,
    search_regions,
)

FIND_USAGE = "customer find TEXT  (name, email, phone or #id)"
SHOW_USAGE = "customer show ID [--full]"
PREFS_USAGE = "customer prefs ID"
FIND_LIMIT = 10


@dataclass(frozen=True)
class FindCustomer:
    text: str


@dataclass(frozen=True)
class ShowCustomer:
    customer_id: int
    full: bool = False


@dataclass(frozen=True)
class CustomerPrefs:
    customer_id: int


def parse_find(words: list[str], rest: str, today: date) -> FindCustomer:
    if not words:
        raise ParseError("Say what to look for.", FIND_USAGE)
    return FindCustomer(" ".join(words))


def parse_show(words: list[str], rest: str, today: date) -> ShowCustomer:
    words = list(words)
    full = take_flag(words, "--full", "full")
    if len(words) != 1:
        raise ParseError("Give one customer id.", SHOW_USAGE)
    return ShowCustomer(customer_id(words[0], SHOW_USAGE), full)


def parse_prefs(words: list[str], rest: str, today: date) -> CustomerPrefs:
    if len(words) != 1:
        raise ParseError("Give one customer id.", PREFS_USAGE)
    return CustomerPrefs(customer_id(words[0], PREFS_USAGE))


def show_role(command: ShowCustomer) -> Role:
    """Unmasked contact details are for agents and up."""
    return Role.AGENT if command.full else Role.VIEWER


def _contact(customer: CustomerProfile, who: StaffIdentity, full: bool) -> tuple[str, str]:
    if full and role_allows(who.role, Role.AGENT):
        return spaced_phone(customer.phone_e164), customer.email or "—"
    return mask_phone(customer.phone_e164), mask_email(customer.email)


def customer_page(ctx: CommandContext, customer_id: int) -> str:
    """The customer's page on the dashboard, where consent and preferences are changed."""
    return f"{ctx.settings.public_url.rstrip('/')}/communication/customers/{customer_id}"


async def run_find(command: FindCustomer, who: StaffIdentity, ctx: CommandContext) -> Reply:
    text = command.text.strip()
    from domain.customers.importing import phones_typed  # phonenumbers: loaded when a search needs it

    phones = phones_typed(text, await search_regions(ctx.database, ctx.settings.phone_region))
    rows = await customers_matching(ctx.database, text, limit=FIND_LIMIT + 1, phones=phones)
    if not rows:
        return Reply(f"No customer matches “{text}”.", title="Customers")
    shown = rows[:FIND_LIMIT]
    table = Table(
        ("ID", "Name", "Phone", "Email", "Segment"),
        tuple((f"#{c.id}", c.name, mask_phone(c.phone_e164), mask_email(c.email), c.segment) for c in shown),
    )
    buttons = tuple(Button(f"Show #{c.id}", f"customer show {c.id}") for c in shown[:3])
    # Only one more than shown is read: past the limit the count is "more than", never the rows shown.
    said = (
        f"More than {FIND_LIMIT} customers match “{text}”: the first {FIND_LIMIT} (narrow the search to see others)"
        if len(rows) > FIND_LIMIT
        else f"{len(shown)} {'customer matches' if len(shown) == 1 else 'customers match'} “{text}”"
    )
    return Reply(
        f"{said}.",
        title="Customers",
        table=table,
        buttons=buttons,
    )


async def run_show(command: ShowCustomer, who: StaffIdentity, ctx: CommandContext) -> Reply:
    customer = await customer_profile(ctx.database, command.customer_id)
    if customer is None:
        return Reply(f"There is no customer #{command.customer_id}.", kind="error")
    phone, email = _contact(customer, who, command.full)
    fields = (
        Field("Phone", phone),
        Field("Email", email),
        Field("Locale", customer.locale),
        Field("Time zone", customer.timezone),
        Field("Segment", customer.segment),
        Field("Tags", ", ".join(sorted(customer.tags)) or "—"),
        Field(
            "Preferred channel",
            channel_words(customer.preferred_channel) if customer.preferred_channel else "—",
        ),
        Field("Customer since", f"{customer.created_at.day} {customer.created_at:%b %Y}"),
        Field("On the dashboard", customer_page(ctx, customer.id)),
    )
    masked = "" if command.full else " Contact details are masked; `--full` shows them (agents and up)."
    return Reply(
        f"#{customer.id} {customer.name}.{masked}",
        title=f"Customer #{customer.id}",
        fields=fields,
        buttons=(Button("Preferences", f"customer prefs {customer.id}"),),
        private=command.full,
    )


async def run_prefs(command: CustomerPrefs, who: StaffIdentity, ctx: CommandContext) -> Reply:
    customer = await customer_preferences(ctx.database, command.customer_id)
    if customer is None:
        return Reply(f"There is no customer #{command.customer_id}.", kind="error")
    consents = customer.consents
    here = ZoneInfo(ctx.business_tz)  # the dates staff see on the dashboard, not UTC's
    table = Table(
        ("Channel", "Consent", "Source", "Since"),
        tuple(
            (
                channel_words(c.channel),
                c.status.replace("_", " "),
                source_words(c.source),
                f"{c.changed_at.astimezone(here):%-d %b %Y}",
            )
            for c in consents
        ),
    )
    # Where the customer set nothing of their own, what the business's rules apply, as their page says it.
    policy = ctx.consent_policy()
    if customer.quiet_hours_start and customer.quiet_hours_end:
        quiet = f"{customer.quiet_hours_start:%H:%M}–{customer.quiet_hours_end:%H:%M}"
    else:
        business = business_quiet_hours_words(policy)
        quiet = f"{business}, the business's default" if business else "none (nor the business's)"
    fields = [
        Field(
            "Preferred channel",
            channel_words(customer.preferred_channel) if customer.preferred_channel else "—",
        ),
        Field("Quiet hours", quiet),
        Field(
            "Weekly marketing limit", cap_words(customer.marketing_max_per_week, business_cap_words(policy))
        ),
    ]
    why = "No message to this customer has been held back."
    suppressed = customer.last_held_back
    if suppressed is not None:
        explanation = suppressed.explanation or suppressed.status_reason or "no reason recorded"
        channel = channel_words(suppressed.channel)
        why = f"Last message not sent ({channel}, {suppressed.created_at.astimezone(here):%-d %b %Y}): {explanation}"
    fields.append(
        Field(
            "Marketing",
            _marketing_reach(
                consents, ctx.consent_policy().marketing_requires_opt_in, customer.marketing_max_per_week
            ),
        )
    )
    fields.append(Field("Why not sent", why))
    fields.append(Field("Change them", customer_page(ctx, customer.id)))
    opted_out = [channel_words(c.channel) for c in consents if c.status == "opted_out"]
    summary = f"Opted out of {', '.join(opted_out)}." if opted_out else "Not opted out of any channel."
    return Reply(
        f"#{customer.id} {customer.name}: {summary}" + (f"\n{why}" if suppressed is not None else ""),
        title="Preferences",
        fields=tuple(fields),
        table=table,
    )


def _marketing_reach(
    consents: Sequence[ChannelConsent], requires_opt_in: bool, weekly_cap: int | None
) -> str:
    """Where a campaign may reach the customer, under the business's rule for channels never asked."""
    if weekly_cap == 0:
        return "none: they asked for no marketing"
    opted_in = [channel_words(c.channel) for c in consents if c.status == "opted_in"]
    if requires_opt_in:
        if not opted_in:
            return "none: they have not opted in on any channel (service messages still go)"
        return f"only on {', '.join(opted_in)} (where they opted in)"
    closed = {c.channel for c in consents if c.status == "opted_out"}
    if closed >= {c.value for c in OUTBOUND_CHANNELS}:
        return "none: they opted out of every channel"
    if closed:
        return f"any channel but {', '.join(channel_words(c) for c in sorted(closed))}"
    return "any channel they can be reached on"
