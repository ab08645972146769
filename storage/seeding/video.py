"""The demo's video consultations: clinicians' working hours, each consultation's room and links, and the
time claims of those still to come (a seeded clash is cancelled, so nothing is double-booked)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.video.slots import steps_of
from storage.models import Appointment, VideoConsultation
from storage.seeding.catalogue import Row, StaffMember
from storage.seeding.plan import derive_rng
from storage.seeding.writer import RowSink

#: Every clinician who takes video consultations works Mon-Fri with a lunch break, in their clinic's zone.
WORKING_SPANS = ((time(9, 0), time(12, 30)), (time(13, 30), time(17, 0)))
WORKDAYS = range(5)
ROOM_BASE_URL = "https://video.northwind.example"


def clinician_hours_rows(members: Sequence[StaffMember]) -> list[Row]:
    """Working hours for the agents: the demo's clinicians (every video consultation is held by one)."""
    rows: list[Row] = []
    for member in members:
        if member.role != "agent":
            continue
        for weekday in WORKDAYS:
            for starts, ends in WORKING_SPANS:
                rows.append(
                    {
                        "id": len(rows) + 1,
                        "staff_id": member.id,
                        "weekday": weekday,
                        "starts": starts,
                        "ends": ends,
                    }
                )
    return rows


def consultation_links(seed: int, consultation_id: int, room_hex: str) -> dict[str, Any]:
    """A seeded consultation's room and its two link tokens.

    Drawn from a generator of their own so the same plan seeds the same rows (the seed is a demo's, so its
    links are as public as its seed: never seed a database real patients use).
    """
    rng = derive_rng(seed, "video-links", consultation_id)
    room_name = f"sb-{room_hex}"
    return {
        "room_name": room_name,
        "room_url": f"{ROOM_BASE_URL}/{room_name}",
        "link_token": _token(rng.randbytes(24)),
        "clinician_token": _token(rng.randbytes(24)),
    }


def _token(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def seed_time_claims(connection: AsyncConnection, sink: RowSink) -> None:
    """Claim the clinicians' time for every consultation still to come, first booked first; one that would
    share a clinician's time with an earlier booking is cancelled instead (with its appointment)."""
    rows = (
        await connection.execute(
            select(
                VideoConsultation.id,
                VideoConsultation.appointment_id,
                VideoConsultation.staff_id,
                VideoConsultation.scheduled_at,
                VideoConsultation.duration_minutes,
            )
            .where(
                VideoConsultation.status == "scheduled",
                VideoConsultation.appointment_id.is_not(None),
                VideoConsultation.staff_id.is_not(None),
            )
            .order_by(VideoConsultation.created_at, VideoConsultation.id)
        )
    ).all()
    held: set[tuple[int | None, datetime]] = set()
    clashes: list[tuple[int, int | None]] = []
    for consultation_id, appointment_id, staff_id, scheduled_at, minutes in rows:
        steps = steps_of(scheduled_at, scheduled_at + timedelta(minutes=minutes))
        if any((staff_id, step) in held for step in steps):
            clashes.append((consultation_id, appointment_id))
            continue
        for step in steps:
            held.add((staff_id, step))
            sink.add(
                "clinician_time_claims",
                {"staff_id": staff_id, "starts_at": step, "appointment_id": appointment_id},
            )
    await sink.flush(connection)
    for start in range(0, len(clashes), 500):
        chunk = clashes[start : start + 500]
        await connection.execute(
            update(VideoConsultation)
            .where(VideoConsultation.id.in_([c for c, _ in chunk]))
            .values(status="cancelled")
        )
        await connection.execute(
            update(Appointment).where(Appointment.id.in_([a for _, a in chunk])).values(status="cancelled")
        )
