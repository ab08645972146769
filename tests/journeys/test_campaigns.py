"""A marketer runs a campaign on every channel through the JSON API: create, preview, launch, pause, resume,
and every planned recipient gets exactly one message at the provider (the sandbox)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest

from tests.journeys.conftest import Demo, wait_for

#: The sandbox's name for each channel's provider.
PROVIDER = {"sms": "twilio", "whatsapp": "whatsapp_cloud", "telegram": "telegram"}


def campaign_messages(demo: Demo, channel: str, code: str) -> list[dict[str, Any]]:
    """What reached the customers' phones or mailboxes for this campaign (its offer code is in every text)."""
    if channel == "email":
        return [{"to": e["rcpt_tos"][0]} for e in demo.sandbox_emails() if code in e["text"]]
    return [
        m
        for m in demo.sandbox_messages(PROVIDER[channel])
        if m.get("direction", "outbound") == "outbound" and code in (m.get("body") or "")
    ]


@pytest.mark.parametrize("channel", ["sms", "email", "whatsapp", "telegram"])
def test_a_campaign_per_channel_is_previewed_launched_paused_and_finished_once(
    demo: Demo, channel: str
) -> None:
    slug, code = f"autumn-{channel}", f"AUT{channel.upper()}"
    created = demo.api(
        "POST",
        "/api/campaigns",
        {
            "slug": slug,
            "name": f"Autumn offer ({channel})",
            "template": "seasonal_offer",
            "channels": [channel],
            "variables": {"offer": "20% off skin checks", "code": code},
            "respect_quiet_hours": False,
        },
    )
    assert created["status"] == "draft"

    preview = demo.api("GET", f"/api/campaigns/{slug}/preview")
    assert preview["planned"] > 0, preview
    assert "template_error" not in preview["exclusions"], preview
    assert set(preview["per_channel"]) == {channel}
    assert code in preview["sample"]["text"]

    assert demo.api("POST", f"/api/campaigns/{slug}/launch")["status"] == "running"
    wait_for(lambda: campaign_messages(demo, channel, code), 60, f"the first {channel} message")
    assert demo.api("POST", f"/api/campaigns/{slug}/pause")["status"] == "paused"
    time.sleep(1.5)  # a send already handed to the provider may still land
    settled = len(campaign_messages(demo, channel, code))
    time.sleep(3)
    assert len(campaign_messages(demo, channel, code)) == settled, "messages kept going out while paused"

    assert demo.api("POST", f"/api/campaigns/{slug}/resume")["status"] == "running"

    def all_sent() -> list[dict[str, Any]] | None:
        found = campaign_messages(demo, channel, code)
        return found if len(found) >= preview["planned"] else None

    sent = wait_for(all_sent, 120, f"all {preview['planned']} {channel} messages")
    per_recipient = Counter(m["to"] for m in sent)
    assert len(per_recipient) == preview["planned"] and set(per_recipient.values()) == {1}, per_recipient

    def completed() -> bool:
        return bool(demo.api("GET", f"/api/campaigns/{slug}/progress")["status"] == "completed")

    wait_for(completed, 120, "the campaign to complete")
    # Its cost is what providers charged for what they took, recounted from the messages' rows.
    from sqlalchemy import select

    from storage.models import BulkMessaging, CustomerCommunication

    cc = CustomerCommunication
    charged = Counter[str]()
    for currency, micros in demo.rows(
        select(cc.currency, cc.cost_micros)
        .join(BulkMessaging, BulkMessaging.id == cc.campaign_id)
        .where(BulkMessaging.slug == slug, cc.sent_at.is_not(None), cc.cost_micros.is_not(None))
    ):
        charged[currency] += micros
    progress = demo.api("GET", f"/api/campaigns/{slug}/progress")
    assert progress["cost_micros"] == {c: m for c, m in charged.items()}, (progress, charged)
    if channel == "sms":  # Twilio reports a price for each SMS
        assert sum(charged.values()) > 0
    refused = demo.api("POST", f"/api/campaigns/{slug}/launch", expect=422)
    assert "completed campaign cannot be launched" in refused["detail"]
