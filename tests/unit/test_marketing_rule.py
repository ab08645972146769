"""The business's marketing rule (SWITCHBOARD_MARKETING_REQUIRES_OPT_IN) as each front end states it: the
policy every sender uses, the bot's `customer prefs` line, and an import's summary when the file says nothing
about consent."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.commands.customers import _marketing_reach
from storage.customer_import import ImportCounts
from storage.queries.customers import ChannelConsent
from switchboard.customer_import import ImportResult
from switchboard.policies import business_consent_policy
from switchboard.settings import Settings

AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def test_opt_in_is_required_by_default_and_the_setting_reaches_the_policy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SWITCHBOARD_MARKETING_REQUIRES_OPT_IN", raising=False)
    assert business_consent_policy(Settings()).marketing_requires_opt_in is True
    monkeypatch.setenv("SWITCHBOARD_MARKETING_REQUIRES_OPT_IN", "off")
    assert business_consent_policy(Settings()).marketing_requires_opt_in is False


@pytest.mark.parametrize(
    ("statuses", "requires_opt_in", "said"),
    [
        ({}, True, "none: they have not opted in on any channel (service messages still go)"),
        (
            {"sms": "opted_out"},
            True,
            "none: they have not opted in on any channel (service messages still go)",
        ),
        (
            {"sms": "opted_in", "email": "opted_out", "whatsapp": "opted_in"},
            True,
            "only on SMS, WhatsApp (where they opted in)",
        ),
        ({}, False, "any channel they can be reached on"),
        ({"sms": "opted_out", "email": "opted_in"}, False, "any channel but SMS"),
        (
            dict.fromkeys(("sms", "email", "whatsapp", "telegram"), "opted_out"),
            False,
            "none: they opted out of every channel",
        ),
    ],
)
def test_the_bot_says_where_marketing_reaches_a_customer(
    statuses: dict[str, str], requires_opt_in: bool, said: str
) -> None:
    consents = [ChannelConsent(channel, status, "import", AT) for channel, status in statuses.items()]
    assert _marketing_reach(consents, requires_opt_in, None) == said
    # A weekly limit of 0 is no marketing, whatever the channels say.
    assert _marketing_reach(consents, requires_opt_in, 0) == "none: they asked for no marketing"


def _result(*, created: int, gives_consent: bool) -> ImportResult:
    return ImportResult(
        ImportCounts(created=created), created, 0, None, (), dry_run=False, gives_consent=gives_consent
    )


def test_an_import_without_consent_says_campaigns_will_not_reach_the_new_customers() -> None:
    warning = (
        "The file says nothing about consent, so campaigns will not reach the new customers until they opt in"
    )
    first_line = (
        _result(created=3, gives_consent=False).summary(marketing_requires_opt_in=True).splitlines()[0]
    )
    assert warning in first_line
    assert "the new customer until" in _result(created=1, gives_consent=False).summary(
        marketing_requires_opt_in=True
    )
    # Nothing to warn about: the file gave consent, the business does not require it, or no one is new.
    assert "consent, so" not in _result(created=3, gives_consent=True).summary(marketing_requires_opt_in=True)
    assert "consent, so" not in _result(created=3, gives_consent=False).summary(
        marketing_requires_opt_in=False
    )
    assert "consent, so" not in _result(created=0, gives_consent=False).summary(
        marketing_requires_opt_in=True
    )
