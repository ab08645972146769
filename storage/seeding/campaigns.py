"""The past campaign calendar: a monthly newsletter, seasonal promotions and Black Friday."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from domain.templates.selection import BY_LANGUAGE
from storage.seeding.catalogue import CLINICS, Row
from storage.seeding.people import Customer
from storage.seeding.plan import Calendar


def _offer(english: str, german: str, code: str) -> dict[str, Any]:
    """A campaign's values, the offer said in German for the German messages (BY_LANGUAGE), as a manager
    writes `offer[de] = …` in the wizard."""
    return {"offer": english, "code": code, BY_LANGUAGE: {"de": {"offer": german}}}


#: month -> (template, name, variables, tags the audience needs (any), channel order)
_PROMOS: dict[int, tuple[tuple[str, str, dict[str, Any], tuple[str, ...], tuple[str, ...]], ...]] = {}
_SKIN = ("skincare", "sensitive-skin")
_SPRING = (
    "spring_promo",
    "Spring skin refresh",
    _offer("20% off serums", "20 % Rabatt auf Seren", "SPRING20"),
    _SKIN,
    ("whatsapp", "sms", "email"),
)
_SUMMER = (
    "seasonal_offer",
    "Summer SPF week",
    _offer("SPF 50 two for one", "LSF 50 zum halben Preis", "SUN2X1"),
    _SKIN,
    ("whatsapp", "email", "sms"),
)
_VITAMIN = (
    "seasonal_offer",
    "Vitamin D for the dark months",
    _offer("25% off vitamin D3", "25 % Rabatt auf Vitamin D3", "SUNNY25"),
    ("supplements",),
    ("email", "whatsapp", "telegram"),
)
_VIDEO = (
    "seasonal_offer",
    "Video consultations 15% off",
    _offer("15% off video consultations", "15 % Rabatt auf Videosprechstunden", "VIDEO15"),
    ("video-first", "skincare"),
    ("email", "telegram", "whatsapp"),
)
_DEVICES = (
    "seasonal_offer",
    "Device upgrade days",
    _offer("EUR 50 off LED devices", "50 € Rabatt auf LED-Geräte", "GLOW50"),
    ("devices",),
    ("email", "whatsapp"),
)
for _month in range(1, 13):
    first = _SPRING if _month in (3, 4, 5) else _SUMMER if _month in (6, 7, 8) else _VITAMIN
    _PROMOS[_month] = (first, _VIDEO if _month % 2 else _DEVICES)
_BLACK_FRIDAY = (
    "seasonal_offer",
    "Black Friday",
    _offer("30% off everything", "30 % Rabatt auf alles", "BLACK30"),
    (),
    ("whatsapp", "email", "sms", "telegram"),
)
_CLINIC_EVENTS = ("seasonal_offer", "Open clinic evening", _offer("free skin check at our open evening", "kostenloser Hautcheck an unserem offenen Abend", "OPEN"), (), ("email", "whatsapp", "telegram"))  # fmt: skip
_NEWSLETTER_CHANNELS = ("email", "telegram", "whatsapp")
#: Campaign messages go out from 10:00 in each customer's local time, paced over two and a half hours.
SEND_FROM_MINUTE, SEND_OVER_MINUTES = 600, 150


@dataclass
class CampaignPlan:
    id: int
    slug: str
    name: str
    template: str
    variables: dict[str, Any]
    tags_any: tuple[str, ...]
    segments: tuple[str, ...]
    channels: tuple[str, ...]
    day_index: int
    launched_at: datetime
    completed_at: datetime
    created_by: int
    planned: int = 0
    excluded: int = 0

    def targets(self, customer: Customer) -> bool:
        if customer.segment not in self.segments:
            return False
        return not self.tags_any or any(tag in customer.tags for tag in self.tags_any)

    def row(self, customer_count: int) -> Row:
        return {
            "id": self.id,
            "slug": self.slug,
            "name": self.name,
            "status": "completed",
            "category": "marketing",
            "template_name": self.template,
            "channel_order": list(self.channels),
            "fallback_after_minutes": 240 if len(self.channels) > 1 else None,
            "audience": {"segments": list(self.segments), "tags_any": list(self.tags_any)},
            "variables": self.variables,
            "respect_quiet_hours": True,
            "scheduled_at": self.launched_at,
            "planning_cursor": customer_count,
            "planning_done": True,
            "planned_count": self.planned,
            "excluded_count": self.excluded,
            "created_by": self.created_by,
            "created_at": self.launched_at - timedelta(days=3),
            "launched_at": self.launched_at,
            "completed_at": self.completed_at,
        }


def plan_campaigns(calendar: Calendar, rng: random.Random) -> list[CampaignPlan]:
    """Newsletters on the first Tuesday, two promotions a month, Black Friday; all finished before the end."""
    campaigns: list[CampaignPlan] = []
    for index in range(calendar.days - 2):
        day = calendar.day(index)
        picks: list[tuple[str, str, dict[str, str], tuple[str, ...], tuple[str, ...]]] = []
        if day.weekday() == 1 and day.day <= 7:
            headline = f"{day:%B} at Northwind"
            picks.append(("monthly_newsletter", f"Newsletter {day:%B %Y}", {"headline": headline, "link": "https://northwind.example/news"}, ("newsletter",), _NEWSLETTER_CHANNELS))  # fmt: skip
        if day.weekday() == 1 and 15 <= day.day <= 21:
            picks.append(_CLINIC_EVENTS)
        if day.weekday() == 3 and 8 <= day.day <= 14:
            picks.append(_PROMOS[day.month][0])
        if day.weekday() == 3 and 22 <= day.day <= 28 and not _is_black_friday_week(day):
            picks.append(_PROMOS[day.month][1])
        if day.month == 11 and day.weekday() == 4 and 23 <= day.day <= 29:
            picks.append(_BLACK_FRIDAY)
        for template, name, variables, tags, channels in picks:
            campaign_id = len(campaigns) + 1
            segments = (
                ("vip", "regular", "new", "lapsed") if name == "Black Friday" else ("vip", "regular", "new")
            )
            campaigns.append(
                CampaignPlan(
                    id=campaign_id,
                    slug=f"{day:%Y-%m}-{name.lower().replace(' ', '-')}"[:64],
                    name=name,
                    template=template,
                    variables=variables,
                    tags_any=tags,
                    segments=segments,
                    channels=channels,
                    day_index=index,
                    launched_at=calendar.local_time(
                        index, "Europe/Berlin", 9 * 60 + rng.randrange(0, 60, 15)
                    ),
                    completed_at=_last_send(calendar, index),
                    created_by=rng.choice((2, 3)),
                )
            )
    return campaigns


def draft_campaign_row(campaign_id: int, calendar: Calendar) -> Row:
    """An upcoming campaign still being prepared, so the campaign pages have something to edit."""
    created_at = calendar.end_at - timedelta(days=1)
    return {
        "id": campaign_id,
        "slug": f"{calendar.plan.end_date + timedelta(days=14):%Y-%m}-loyalty-preview",
        "name": "Loyalty programme preview",
        "status": "draft",
        "category": "marketing",
        "template_name": "seasonal_offer",
        "channel_order": ["whatsapp", "email"],
        "fallback_after_minutes": 240,
        "audience": {"segments": ["vip"], "tags_any": []},
        "variables": _offer("double loyalty points", "doppelte Treuepunkte", "VIPX2"),
        "respect_quiet_hours": True,
        "scheduled_at": None,
        "planning_cursor": 0,
        "planning_done": False,
        "planned_count": 0,
        "excluded_count": 0,
        "created_by": 2,
        "created_at": created_at,
        "launched_at": None,
        "completed_at": None,
    }


def _last_send(calendar: Calendar, index: int) -> datetime:
    """When the last customer's local sending window closed (New York's, hours after Berlin's), plus the
    minute a message takes to be handed over."""
    last = max(
        calendar.local_time(index, clinic.timezone, SEND_FROM_MINUTE + SEND_OVER_MINUTES)
        for clinic in CLINICS
    )
    return last + timedelta(minutes=1)


def _is_black_friday_week(day: date) -> bool:
    return day.month == 11 and day.day >= 22
