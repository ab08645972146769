"""The template editor over HTTP on each engine: preview with sample values and SMS segments, the variable
check beside the text, saves through the API's validation kept as versions, compared and restored; template
code from a person never runs as code and never stalls the process."""

# ruff: noqa: F811  (the pages' `client` and `seeded` fixtures are imported, then named as test arguments)
from __future__ import annotations

import html
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from domain.templates.model import MessageTemplate as Variant
from domain.templates.model import TemplateChanged
from domain.templates.use_cases import save_template_variant
from domain.vocabulary import Channel, MessageCategory
from storage.database import Database
from storage.models import AuditLog, MessageTemplate, MessageTemplateVersion
from storage.templates import SqlTemplateUnitOfWork
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

EDITOR = "/communication/templates/winter-offer/sms/en"


async def _rows(seeded: Seeded) -> tuple[MessageTemplate | None, list[int]]:
    database = Database.connect(seeded.settings.database_url)
    async with database.read_sessions() as session:
        row = await session.scalar(select(MessageTemplate).where(MessageTemplate.name == "winter-offer"))
        versions = (
            []
            if row is None
            else list(
                await session.scalars(
                    select(MessageTemplateVersion.version)
                    .where(MessageTemplateVersion.template_id == row.id)
                    .order_by(MessageTemplateVersion.version)
                )
            )
        )
    await database.dispose()
    return row, versions


async def test_a_manager_writes_previews_saves_compares_and_restores_a_template(
    client: Client, seeded: Seeded
) -> None:
    await sign_in(client, seeded, MANAGER)
    new = await client.get(
        "/communication/templates/new?name=winter-offer&channel=sms&locale=en", follow_redirects=False
    )
    assert new.status_code == 303 and new.headers["location"] == EDITOR
    first = {
        "category": "marketing",
        "body": "Hi {{ first_name }}, {{ offer }} at {{ clinic }} until Friday.",
        "variables": "first_name, offer, clinic",
        "samples": "first_name = Jana\noffer = 10 % off\nclinic = Mitte",
        "action": "preview",
    }
    shown = await post_form(client, EDITOR, EDITOR, first)
    assert shown.status_code == 200
    body = "Hi Jana, 10 % off at Mitte until Friday."
    assert (
        html.escape(body, quote=False) in shown.text
        and f"{len(body)} characters, GSM-7, 1 segment" in shown.text
    )
    assert (await _rows(seeded))[0] is None  # a preview saves nothing

    saved = await post_form(client, EDITOR, EDITOR, {**first, "action": "save"})
    assert (
        saved.status_code == 303
        and saved.headers["location"] == EDITOR
        and said_after(saved) == (EDITOR, {"saved": "1", "samples": first["samples"]})
    )
    # The saved page keeps the samples typed for the preview (the walk saw them blanked by the save)...
    after_save = (await client.get(EDITOR)).text
    assert html.escape(body, quote=False) in after_save and "first_name = Jana" in after_save
    # ...and opened again later, its samples are empty: the preview shows each variable's placeholder.
    reopened = (await client.get(EDITOR)).text
    placeholders = "Hi [first_name], [offer] at [clinic] until Friday."
    assert html.escape(placeholders, quote=False) in reopened, reopened
    assert f"{len(placeholders)} characters" in reopened

    # A name as people write it becomes a template's key; one of no letters is refused in words.
    named = await client.get(
        "/communication/templates/new?name=Flu+Jab!&channel=sms&locale=en", follow_redirects=False
    )
    assert named.status_code == 303 and named.headers["location"] == "/communication/templates/flu-jab/sms/en"
    german = await client.get(
        "/communication/templates/new?name=Grippe+f%C3%BCr+%C3%84ltere&channel=sms&locale=de",
        follow_redirects=False,
    )
    assert german.headers["location"] == "/communication/templates/grippe-fuer-aeltere/sms/de"
    nameless = await client.get("/communication/templates/new?name=%21%21&channel=sms&locale=en")
    assert nameless.status_code == 422 and "such as winter-offer" in nameless.text
    assert "not valid" not in nameless.text
    unicode = {**first, "body": "Hallo {{ first_name }} 👋 {{ offer }} in {{ clinic }}.", "action": "save"}
    assert said_after(await post_form(client, EDITOR, EDITOR, unicode))[1]["saved"] == "2"
    page = (await client.get(f"{EDITOR}?compare=1")).text
    assert "Version 1 against the current" in page and "👋" in page and 'class="diff-remove"' in page
    preview = await post_form(client, EDITOR, EDITOR, {**unicode, "action": "preview"})
    assert "UCS-2" in preview.text

    restored = await post_form(client, EDITOR, f"{EDITOR}/restore/1", {})
    assert said_after(restored) == (EDITOR, {"saved": "3"})
    row, versions = await _rows(seeded)
    assert row is not None and row.body == first["body"] and row.version == 3 and versions == [1, 2, 3]
    database = Database.connect(seeded.settings.database_url)
    async with database.read_sessions() as session:
        audited = list(
            await session.scalars(
                select(AuditLog.action).where(AuditLog.target.like("template:winter-offer%"))
            )
        )
    await database.dispose()
    assert audited == ["template.save"] * 3


async def test_mistakes_and_template_code_are_refused_beside_the_text_and_nothing_is_saved(
    client: Client, seeded: Seeded
) -> None:
    await sign_in(client, seeded, MANAGER)
    base = {"category": "marketing", "variables": "first_name", "samples": "", "action": "save"}
    cases = [
        ("Hi {{ first_name }}, see you at {{ clinic }}.", "clinic"),  # used but not declared
        ("{{ ''.__class__.__mro__ }}", ""),  # sandbox: no attribute walking
        (
            "{% for i in range(10**9) %}{% for j in range(10**9) %}x{% endfor %}{% endfor %}",
            "",
        ),  # no stalling
        ("Hi {{ first_name ", ""),  # does not parse
    ]
    for text, words in cases:
        started = time.monotonic()
        answer = await post_form(client, EDITOR, EDITOR, {**base, "body": text})
        assert time.monotonic() - started < 10, text  # the trial's time limit, not a stalled process
        assert answer.status_code == 422 and 'id="body-error"' in answer.text, (text, answer.status_code)
        assert words in answer.text
    assert (await _rows(seeded))[0] is None
    # A new variant chooses no category for its writer (a reminder saved as marketing would wait for
    # opt-in and quiet hours), and saving without one says what each is for.
    fresh = (await client.get(EDITOR)).text
    assert '<option value="" selected disabled>What is it for?</option>' in fresh
    assert "transactional: reminders, confirmations" in fresh
    unsaid = await post_form(client, EDITOR, EDITOR, {**base, "category": "", "body": "Hi {{ first_name }}"})
    assert unsaid.status_code == 422 and "Say what the template is for: transactional" in unsaid.text
    assert (await _rows(seeded))[0] is None
    no_token = await client.post(EDITOR, data={**base, "body": "Hi"}, follow_redirects=False)
    assert no_token.status_code == 403 and (await _rows(seeded))[0] is None

    await sign_in(client, seeded, AGENT)
    assert (await client.get(EDITOR)).status_code == 403
    assert (
        "Edit" not in (await client.get("/communication/templates")).text.split("Automated notifications")[0]
    )


async def test_a_save_over_someone_elses_newer_version_is_stopped_and_shows_the_difference(
    client: Client, seeded: Seeded
) -> None:
    """Two managers open version 1; the first saves version 2; the second's save would undo it unseen, so it
    is refused (409) with their text kept and the difference shown; saving again then replaces it."""
    await sign_in(client, seeded, MANAGER)
    base = {
        "category": "marketing",
        "body": "Hi {{ first_name }}, see you soon.",
        "variables": "first_name",
        "samples": "first_name = Jana",
        "action": "save",
    }
    assert (await post_form(client, EDITOR, EDITOR, {**base, "opened_version": "new"})).status_code == 303
    page = (await client.get(EDITOR)).text
    assert 'name="opened_version" value="1"' in page
    theirs = {**base, "body": "Hi {{ first_name }}, see you on Monday.", "opened_version": "1"}
    assert said_after(await post_form(client, EDITOR, EDITOR, theirs))[1]["saved"] == "2"

    mine = {**base, "body": "Hi {{ first_name }}, see you in December.", "opened_version": "1"}
    stopped = await post_form(client, EDITOR, EDITOR, mine)
    assert stopped.status_code == 409
    assert "Version 2 by" in stopped.text and "nothing was saved" in stopped.text
    assert (
        "see you in December." in stopped.text and "see you on Monday." in stopped.text
    )  # kept, and the diff
    assert 'name="opened_version" value="2"' in stopped.text
    row, versions = await _rows(seeded)
    assert row is not None and row.version == 2 and versions == [1, 2]

    again = await post_form(client, EDITOR, EDITOR, {**mine, "opened_version": "2"})
    assert said_after(again)[1]["saved"] == "3"
    second_new = await post_form(client, EDITOR, EDITOR, {**base, "opened_version": "new"})
    assert second_new.status_code == 409  # "new" was opened, but the variant exists by now
    # The same check holds under the write lock, for a save that read the version just before another landed.
    database = Database.connect(seeded.settings.database_url)
    stale = Variant(
        "winter-offer",
        Channel.SMS,
        "en",
        "Hi {{ first_name }}, late.",
        MessageCategory.MARKETING,
        ("first_name",),
    )
    with pytest.raises(TemplateChanged):
        await save_template_variant(
            SqlTemplateUnitOfWork(database, business_tz=seeded.settings.business_timezone),
            stale,
            actor="late@northwind.example",
            via="web",
            now=datetime.now(UTC),
            over=2,
        )
    await database.dispose()
    row, versions = await _rows(seeded)
    assert row is not None and row.version == 3 and versions == [1, 2, 3] and "late" not in row.body


async def test_a_variant_whose_values_differ_from_another_variant_s_says_so(
    client: Client, seeded: Seeded
) -> None:
    """The walk saved flu-jab's English SMS with "date" and its German one with "datum", silently; a send to a
    German patient then failed for want of "datum"."""
    await sign_in(client, seeded, MANAGER)
    english, german = "/communication/templates/flu-jab/sms/en", "/communication/templates/flu-jab/sms/de"
    base = {"category": "transactional", "samples": "", "action": "save"}
    saved = await post_form(
        client, english, english, {**base, "body": "Flu jab on {{ date }}", "variables": "date"}
    )
    assert saved.status_code == 303
    assert "variables-apart" not in (await client.get(english)).text  # alone, it agrees with itself
    saved = await post_form(
        client, german, german, {**base, "body": "Grippeimpfung am {{ datum }}", "variables": "datum"}
    )
    assert saved.status_code == 303  # said, not refused: the other variant may be the one to change
    shown = (await client.get(german)).text
    assert (
        "The SMS en variant uses “date”, which this one does not; this one uses “datum”, which the SMS en"
        in shown
    )
    assert "use the same names in both" in shown
    assert "variables-apart" in (await client.get(english)).text
