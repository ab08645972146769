"""Why a running campaign with a channel fallback is not done yet, as its page and the bot say it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.campaigns.model import CampaignProgress, fallbacks_waiting_words
from domain.vocabulary import CampaignStatus

NOW = datetime(2026, 12, 7, 20, 0, tzinfo=UTC)


def progress(**waiting: object) -> CampaignProgress:
    return CampaignProgress(1, CampaignStatus.RUNNING, {}, {}, 0, **waiting)  # type: ignore[arg-type]


def test_failed_ones_wait_for_the_next_channel_and_unconfirmed_ones_are_not_called_failed() -> None:
    """5,000 SMS a minute old were said "not delivered" while their receipts were still coming in."""
    said = fallbacks_waiting_words(
        progress(
            fallbacks_waiting=6,
            next_fallback_at=NOW + timedelta(minutes=17),
            unconfirmed=5000,
            fallback_after_minutes=60,
        ),
        NOW,
        lambda due: f"{due:%H:%M}",
    )
    assert said == (
        "6 recipients whose messages were not delivered wait to be tried on the next channel, the first at "
        "20:17. 5,000 have no delivery confirmed yet; any still unconfirmed 60 minutes after going out are "
        "tried on the next channel."
    )
    due_already = progress(fallbacks_waiting=1, next_fallback_at=NOW - timedelta(minutes=1))
    assert fallbacks_waiting_words(due_already, NOW, str) == (
        "1 recipient whose message was not delivered waits to be tried on the next channel, as soon as the "
        "worker gets to it."
    )
    assert fallbacks_waiting_words(progress(), NOW, str) is None
