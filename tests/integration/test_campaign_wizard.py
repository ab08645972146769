"""The campaign wizard over HTTP on each engine: a live count that matches the recipients recounted from the
customer rows, every mistake beside its field, nothing saved by a count or a refusal, and a saved draft that
launches from its page as one made through the API would."""

# ruff: noqa: F811  (the pages' `client` and `seeded` fixtures are imported, then named as test arguments)
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from storage.database import Database
from storage.models import (
    Appointment,
    AuditLog,
    BulkMessaging,
    Customer,
    CustomerConsent,
    Location,
    MessageTemplate,
)
from tests.integration.test_pages import (  # noqa: F401  (fixtures)
    AGENT,
    MANAGER,
    Client,
    Seeded,
    client,
    post_form,
    seeded,
    sign_in,
)
from tests.notices import said_after

WIZARD = "/communication/campaigns/new"


async def _campaigns(seeded: Seeded) -> int:
    database = Database.connect(seeded.settings.database_url)
    async with database.read_sessions() as session:
        count = await session.scalar(select(func.count()).select_from(BulkMessaging))
    await database.dispose()
    return int(count or 0)


async def _a_template(client: Client) -> tuple[str, str]:
    """A seeded template, and the values it needs from the campaign (one `name = value` per line)."""
    page = (await client.get(WIZARD)).text
    names = re.findall(r'<option value="([a-z0-9_-]+)" >\1 — ', page)
    assert names, "the seed has active templates"
    name = "welcome" if "welcome" in names else names[0]
    needs = re.search(rf">{re.escape(name)} — [^<·]*· needs ([a-z0-9_, ]+)<", page)
    wanted = [n.strip() for n in needs.group(1).split(",")] if needs else []
    # The fold-out under the values says the same in full, where the list's label may be cut short.
    listed = re.search(rf"<dt>{re.escape(name)}</dt><dd>(.*?)</dd>", page)
    assert (re.findall(r"<code>([a-z0-9_]+)</code>", listed.group(1)) if listed else []) == wanted
    return name, "\n".join(f"{n} = Mitte" for n in wanted)


async def test_the_count_matches_the_customer_rows_and_a_saved_draft_launches(
    client: Client, seeded: Seeded
) -> None:
    await sign_in(client, seeded, MANAGER)
    template, values = await _a_template(client)
    database = Database.connect(seeded.settings.database_url)
    async with database.read_sessions() as session:
        segment = await session.scalar(
            select(Customer.segment)
            .where(Customer.segment.is_not(None))
            .group_by(Customer.segment)
            .order_by(func.count().desc())
            .limit(1)
        )
    async with database.sessions() as session:
        # One in the segment with an email but no phone: matched by the filters, not by an SMS campaign.
        session.add(
            Customer(
                name="Emma Mailonly", email="emma@example.com", segment=segment, timezone="Europe/Berlin"
            )
        )
        # One erased at their request: no address left, and never counted as a customer to find one for.
        session.add(
            Customer(name="(erased)", segment=segment, timezone="Europe/Berlin", erased_at=datetime.now(UTC))
        )
        await session.commit()
    async with database.read_sessions() as session:
        with_sms = await session.scalar(
            select(func.count())
            .select_from(Customer)
            .where(Customer.segment == segment, Customer.phone_e164.is_not(None))
        )
        without_sms = await session.scalar(
            select(func.count())
            .select_from(Customer)
            .where(Customer.segment == segment, Customer.phone_e164.is_(None), Customer.erased_at.is_(None))
        )
    form = {
        "name": "December check-up",
        "template": template,
        "channel": "sms",
        "segments": segment,
        "fallback_after": "60",
        "quiet_hours": "on",
        "variables": values,
        "action": "count",
    }
    before = await _campaigns(seeded)
    counted = await post_form(client, WIZARD, WIZARD, form)
    assert counted.status_code == 200, counted.text[-2000:]
    shown = re.search(r"<strong id=\"planned-count\">([\d,]+)</strong> of ([\d,]+) matching", counted.text)
    assert shown is not None
    planned, matching = (int(g.replace(",", "")) for g in shown.groups())
    assert matching == with_sms and planned <= matching  # recounted from the customer rows
    said = (
        "customer matches the filters but has" if without_sms == 1 else "customers match the filters but have"
    )
    assert f'<p id="no-address">{without_sms:,} more {said} no address on the chosen channels' in counted.text
    assert await _campaigns(seeded) == before  # a count saves nothing
    unnamed = await post_form(client, WIZARD, WIZARD, {**form, "name": ""})  # counting needs no name yet
    assert unnamed.status_code == 200 and f'<strong id="planned-count">{planned:,}</strong>' in unnamed.text
    assert "Give the campaign a name" not in unnamed.text and await _campaigns(seeded) == before

    saved = await post_form(client, WIZARD, WIZARD, {**form, "action": "save"})
    assert (
        saved.status_code == 303
        and saved.headers["location"] == "/communication/campaigns/december-check-up"
        and said_after(saved)[1] == {"done": "created"}
    )
    page = (await client.get(saved.headers["location"])).text
    assert "Saved as a draft" in page and f"<strong>{planned:,}</strong> of {matching:,} recipients" in page
    again = await post_form(client, WIZARD, WIZARD, {**form, "action": "save"})
    assert again.headers["location"].startswith("/communication/campaigns/december-check-up-2")
    async with database.read_sessions() as session:
        stored = await session.scalar(select(BulkMessaging).where(BulkMessaging.slug == "december-check-up"))
        actions = list(
            await session.scalars(select(AuditLog.action).where(AuditLog.action == "campaign.create"))
        )
    await database.dispose()
    assert stored is not None and stored.status == "draft" and stored.channel_order == ["sms"]
    assert stored.audience["segments"] == [segment] and len(actions) == 2


async def test_each_mistake_is_named_beside_its_field_and_nothing_is_saved(
    client: Client, seeded: Seeded
) -> None:
    await sign_in(client, seeded, MANAGER)
    template, values = await _a_template(client)
    base = {
        "variables": values,
        "name": "Spring offer",
        "template": template,
        "channel": "email",
        "fallback_after": "60",
        "quiet_hours": "on",
        "action": "save",
    }
    berlin = ZoneInfo("Europe/Berlin")
    yesterday = (datetime.now(berlin) - timedelta(days=1)).date().isoformat()
    cases = [
        ({"name": ""}, "name", "Give the campaign a name"),
        ({"template": "no-such-template"}, "template", "Pick a template"),
        ({"fallback": "email"}, "fallback", "different channel"),
        ({"fallback": "sms", "fallback_after": "0"}, "fallback_after", "1 to 10,080 minutes"),
        ({"variables": "{{ 7*7 }} = x"}, "variables", "name = value"),
        (
            {"variables": f"{values}\nunsubscribe_url = http://evil.example"},
            "variables",
            "filled in by Switchboard",
        ),
        ({"send_date": yesterday, "send_time": "09:00"}, "send_date", "has passed"),
        ({"send_date": "2027-03-28", "send_time": "02:30"}, "send_time", "does not exist"),
        ({"countries": "AQ"}, "segments", "No customer matches"),
        (
            {"variables": f"{values}\nnote[fr] = Bonjour"},
            "variables",
            "has no French message (it is written in",
        ),
        ({"variables": f"{values}\nnote[de] = Hallo"}, "variables", f"The template “{template}” reads "),
        ({"variables": f"{values}\nofer = 10% off"}, "variables", ", not ofer."),  # a misspelt name
        ({"variables": f"{values}\n{values}"}, "variables", "is given twice; keep one line."),
        (
            {"variables": values.replace(" = ", "[de] = ")},
            "variables",
            "[de] has no value for the other languages",
        ),
        (
            {"variables": f"{values}\n{values.partition(' ')[0]}[de] ="},
            "variables",
            "[de] has no value: give it one",
        ),
        (
            {"variables": values.replace("Mitte", "")},
            "variables",
            "has no value: give it one (the template reads it)",
        ),
        ({"variables": f"{values}\nnote[deu] = Hallo"}, "variables", "or name[de] = value for the German"),
        (
            {"variables": f"{values}\nby_language = x"},
            "variables",
            "write name[de] = value for a German value",
        ),
    ]
    if values:  # the seeded template reads a value the campaign must give
        cases.append(({"variables": ""}, "variables", "needs a value for"))
    before = await _campaigns(seeded)
    for change, field, words in cases:
        answer = await post_form(client, WIZARD, WIZARD, {**base, **change})
        assert answer.status_code == 422, (change, answer.status_code)
        assert f'id="{field}-error"' in answer.text, (change, field, answer.text[-1500:])
        assert words in answer.text.replace("&#34;", '"'), (change, words)
    assert await _campaigns(seeded) == before

    await sign_in(client, seeded, AGENT)
    assert (await client.get(WIZARD)).status_code == 403
    assert 'href="/communication/campaigns/new"' not in (await client.get("/communication/campaigns")).text


async def test_clinic_visits_and_consent_narrow_the_count_as_the_rows_say(
    client: Client, seeded: Seeded
) -> None:
    """Home clinic, visited since, not visited since and opted in on: each count recounted from the rows."""
    await sign_in(client, seeded, MANAGER)
    template, values = await _a_template(client)
    zone = ZoneInfo(seeded.settings.business_timezone)
    database = Database.connect(seeded.settings.database_url)
    async with database.read_sessions() as session:
        clinic_id, clinic = (
            await session.execute(
                select(Location.id, Location.code)
                .join(Customer, Customer.home_location_id == Location.id)
                .group_by(Location.id, Location.code)
                .order_by(func.count().desc())
                .limit(1)
            )
        ).one()
        last_visit = await session.scalar(
            select(func.max(Appointment.scheduled_at)).where(Appointment.status == "completed")
        )
        assert last_visit is not None
        day = (last_visit - timedelta(days=60)).astimezone(zone).date()
        since = datetime(day.year, day.month, day.day, tzinfo=zone)
        completed = select(Appointment.customer_id).where(
            Appointment.status == "completed", Appointment.scheduled_at >= since
        )
        opted_in = select(CustomerConsent.customer_id).where(
            CustomerConsent.channel == "sms", CustomerConsent.status == "opted_in"
        )
        base = select(func.count()).select_from(Customer).where(Customer.phone_e164.is_not(None))
        expected = {
            "clinic": await session.scalar(base.where(Customer.home_location_id == clinic_id)),
            "visited": await session.scalar(base.where(Customer.id.in_(completed))),
            "not_visited": await session.scalar(base.where(Customer.id.not_in(completed))),
            "opted_in": await session.scalar(base.where(Customer.id.in_(opted_in))),
        }
    await database.dispose()
    form = {
        "name": "Recall",
        "template": template,
        "channel": "sms",
        "fallback_after": "60",
        "quiet_hours": "on",
        "variables": values,
        "action": "count",
    }
    cases = {
        "clinic": {"locations": clinic},
        "visited": {"visited_since": day.isoformat()},
        "not_visited": {"not_visited_since": day.isoformat()},
        "opted_in": {"opted_in_on": "sms"},
    }
    for name, extra in cases.items():
        counted = await post_form(client, WIZARD, WIZARD, {**form, **extra})
        shown = re.search(r"([\d,]+) matching", counted.text)
        if expected[name] == 0:
            assert "No customer matches" in counted.text, name
            continue
        assert counted.status_code == 200 and shown is not None, (name, counted.text[-1500:])
        assert int(shown.group(1).replace(",", "")) == expected[name], name
    assert expected["visited"] and expected["not_visited"] and expected["clinic"]

    both = await post_form(
        client,
        WIZARD,
        WIZARD,
        {
            **form,
            "visited_since": day.isoformat(),
            "not_visited_since": (day - timedelta(days=1)).isoformat(),
        },
    )
    assert both.status_code == 422 and "move one of the days" in both.text
    future = await post_form(client, WIZARD, WIZARD, {**form, "visited_since": "2999-01-01"})
    assert future.status_code == 422 and "a day that has passed" in future.text
    forged = await post_form(client, WIZARD, WIZARD, {**form, "opted_in_on": "pigeon"})
    assert forged.status_code == 422 and "Tick channels from the list." in forged.text


async def test_the_template_list_offers_marketing_templates_first_and_service_ones_apart(
    client: Client, seeded: Seeded
) -> None:
    await sign_in(client, seeded, MANAGER)
    page = (await client.get(WIZARD)).text
    database = Database.connect(seeded.settings.database_url)
    async with database.read_sessions() as session:
        rows = (await session.execute(select(MessageTemplate.name, MessageTemplate.category))).all()
    await database.dispose()
    marketing = {name for name, category in rows if category == "marketing"}
    groups = re.findall(r'<optgroup label="([^"]+)">(.*?)</optgroup>', page, flags=re.DOTALL)
    offered = {label: set(re.findall(r'<option value="([a-z0-9_-]+)"', body)) for label, body in groups}
    # The fallback says who gets it when: at once for whom the channel cannot reach, else if not delivered.
    assert "gets the fallback at once" in page and "only when it bounced" in page
    assert next(iter(offered)) == "Campaign (marketing) templates", list(offered)
    assert marketing and offered["Campaign (marketing) templates"] <= marketing
    service = offered.get("Service message templates (reminders, confirmations)", set())
    assert service and not service & marketing, service


async def test_a_value_written_for_the_german_message_is_saved_beside_the_plain_one(
    client: Client, seeded: Seeded
) -> None:
    await sign_in(client, seeded, MANAGER)
    form = {
        "name": "Winter skin checks",
        "template": "seasonal_offer",
        "channel": "email",
        "fallback_after": "60",
        "quiet_hours": "on",
        "variables": "offer = 20% off winter skin checks\noffer[DE] = 20 % Rabatt auf Hautchecks\ncode = WINTER20",
        "action": "save",
    }
    saved = await post_form(client, WIZARD, WIZARD, form)
    assert saved.status_code == 303, saved.text[-1500:]
    database = Database.connect(seeded.settings.database_url)
    async with database.read_sessions() as session:
        stored = await session.scalar(select(BulkMessaging).where(BulkMessaging.slug == "winter-skin-checks"))
    await database.dispose()
    assert stored is not None and stored.variables == {
        "offer": "20% off winter skin checks",
        "code": "WINTER20",
        "by_language": {"de": {"offer": "20 % Rabatt auf Hautchecks"}},
    }
    shown = (await client.get(saved.headers["location"])).text
    assert (
        "<dt>Values</dt><dd>code = WINTER20; offer = 20% off winter skin checks · German: offer = 20 % Rabatt auf "
        "Hautchecks</dd>"
    ) in shown


async def test_the_count_says_which_values_german_messages_read_as_typed(
    client: Client, seeded: Seeded
) -> None:
    """A campaign written in English for a list with German patients: the count says how many German messages
    read the offer as written, until `offer[de] = …` gives them their own (a code reads alike, so is not named).
    An audience with nobody German gets no such note."""
    await sign_in(client, seeded, MANAGER)
    form = {
        "name": "Winter offer",
        "template": "seasonal_offer",
        "channel": "email",
        "fallback_after": "60",
        "quiet_hours": "on",
        "variables": "offer = 10% off\ncode = WINTER",
        "countries": "DE",
        "action": "count",
    }
    counted = await post_form(client, WIZARD, WIZARD, form)
    assert counted.status_code == 200, counted.text[-1500:]
    shown = re.search(r'<strong id="planned-count">([\d,]+)</strong>', counted.text)
    assert shown is not None
    planned = int(shown.group(1).replace(",", ""))
    assert planned > 1  # every German customer's message is German: the note counts them all
    notes = re.findall(r'<p class="notice warn same-in-every-language">([^<]*)</p>', counted.text)
    assert notes == [  # the code reads alike in every language: not named
        f"The {planned:,} German messages read offer (“10% off”) as written here: add offer[de] = … on its own "
        "line for a German value."
    ]
    translated = await post_form(
        client, WIZARD, WIZARD, {**form, "variables": f"{form['variables']}\noffer[de] = 10 % Rabatt"}
    )
    assert translated.status_code == 200 and "same-in-every-language" not in translated.text
    british = await post_form(client, WIZARD, WIZARD, {**form, "countries": "GB"})
    assert british.status_code == 200 and re.search(r'<strong id="planned-count">[1-9]', british.text)
    assert "same-in-every-language" not in british.text  # nobody in the audience reads German
