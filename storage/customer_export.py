"""Everything Switchboard holds about one customer, for a patient's request to see their data (GDPR art. 15).

`customer_bundle` reads it table by table (the profile, tags, preferences, the consent ledger and the current
consent, every message with its status history, conversations with their messages and attachments,
appointments and video consultations, orders with payments and refunds, the website chat's visits and the
business events that named them); `write_bundle` writes it as a ZIP: `customer.json` with every section,
one CSV per section, and the conversation attachments as files. Secrets (token hashes) are left out.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select

from domain.customers.importing import normalise_phone
from storage.database import Database
from storage.models import (
    Appointment,
    AuditLog,
    BusinessEvent,
    ChatAttachment,
    ChatMessage,
    ChatSession,
    ChatWidgetVisitor,
    CommunicationPreference,
    ConsentRecord,
    Customer,
    CustomerCommunication,
    CustomerConsent,
    CustomerTag,
    MessageStatusEvent,
    Order,
    Payment,
    Refund,
    VideoConsultation,
    VideoJoin,
    VideoRebookOffer,
)

#: Columns never handed out: they prove identity to us, and are no information about the person.
SECRET_COLUMNS = {"token_hash"}
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class NoSuchCustomer(LookupError):
    """No customer matches; the message says what was looked for."""


@dataclass
class CustomerBundle:
    customer_id: int
    sections: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    attachments: list[tuple[str, bytes]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {name: len(rows) for name, rows in self.sections.items()}


def _rows(records: Any, model: type[Any]) -> list[dict[str, Any]]:
    columns = [c for c in model.__table__.columns if c.name not in SECRET_COLUMNS and c.name != "content"]
    return [{c.name: getattr(record, c.key) for c in columns} for record in records]


async def find_customer(
    database: Database,
    *,
    customer_id: int | None,
    email: str | None,
    phone: str | None,
    region: str = "",
) -> int:
    """The one customer an id, an email or a phone number (as people write it, read in `region`) names."""
    query = select(Customer.id)
    if customer_id is not None:
        query = query.where(Customer.id == customer_id)
        asked = f"id {customer_id}"
    elif email:
        query = query.where(Customer.email == email.strip().lower())
        asked = f"email {email}"
    elif phone:
        reading = normalise_phone(phone.strip(), region)
        e164 = reading[0] if isinstance(reading, tuple) else phone.strip()
        query = query.where(Customer.phone_e164 == e164)
        asked = f"phone {e164}"
    else:
        raise NoSuchCustomer("name the customer: an id, --email or --phone")
    async with database.read_sessions() as session:
        found = list(await session.scalars(query.order_by(Customer.id).limit(6)))
    if not found:
        raise NoSuchCustomer(f"no customer has {asked}")
    if len(found) > 1:
        ids = ", ".join(f"#{i}" for i in found[:5]) + (" and more" if len(found) > 5 else "")
        raise NoSuchCustomer(
            f"more than one customer has {asked} (a family may share one): {ids}; give the customer's id instead, "
            f"in place of --email or --phone (e.g. {found[0]})"
        )
    return found[0]


async def customer_bundle(database: Database, customer_id: int) -> CustomerBundle:
    bundle = CustomerBundle(customer_id)
    s = bundle.sections
    async with database.read_sessions() as session:

        async def theirs(model: Any, order: Any = None) -> list[Any]:
            """The rows of `model` that belong to the customer, in `order` (default: by id)."""
            query = select(model).where(model.customer_id == customer_id)
            return list(await session.scalars(query.order_by(order if order is not None else model.id)))

        async def by(model: type[Any], column: Any, ids: list[int]) -> list[Any]:
            found: list[Any] = []
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                found += list(
                    await session.scalars(select(model).where(column.in_(chunk)).order_by(model.id))
                )
            return found

        customer = await session.get(Customer, customer_id)
        if customer is None:
            raise NoSuchCustomer(f"no customer has id {customer_id}")
        s["customer"] = _rows([customer], Customer)
        s["tags"] = [{"tag": tag.tag} for tag in await theirs(CustomerTag, CustomerTag.tag)]
        s["preferences"] = _rows(
            await theirs(CommunicationPreference, CommunicationPreference.customer_id),
            CommunicationPreference,
        )
        s["consent_ledger"] = _rows(await theirs(ConsentRecord), ConsentRecord)
        s["current_consent"] = _rows(await theirs(CustomerConsent, CustomerConsent.channel), CustomerConsent)
        messages = await theirs(CustomerCommunication)
        s["messages"] = _rows(messages, CustomerCommunication)
        s["message_status_history"] = _rows(
            await by(MessageStatusEvent, MessageStatusEvent.communication_id, [m.id for m in messages]),
            MessageStatusEvent,
        )
        conversations = await theirs(ChatSession)
        s["conversations"] = _rows(conversations, ChatSession)
        turns = await by(ChatMessage, ChatMessage.session_id, [c.id for c in conversations])
        s["conversation_messages"] = _rows(turns, ChatMessage)
        files = await by(ChatAttachment, ChatAttachment.message_id, [t.id for t in turns])
        s["attachments"] = _rows(files, ChatAttachment)
        for attachment in files:
            name = _SAFE_NAME.sub("_", attachment.filename)[:100] or "file"
            bundle.attachments.append((f"attachments/{attachment.id}-{name}", bytes(attachment.content)))
        s["appointments"] = _rows(await theirs(Appointment), Appointment)
        consultations = await theirs(VideoConsultation)
        s["video_consultations"] = _rows(consultations, VideoConsultation)
        s["video_joins"] = _rows(
            await by(VideoJoin, VideoJoin.consultation_id, [c.id for c in consultations]), VideoJoin
        )
        s["video_rebook_offers"] = _rows(await theirs(VideoRebookOffer), VideoRebookOffer)
        orders = await theirs(Order)
        s["orders"] = _rows(orders, Order)
        order_ids = [o.id for o in orders]
        s["payments"] = _rows(await by(Payment, Payment.order_id, order_ids), Payment)
        s["refunds"] = _rows(await by(Refund, Refund.order_id, order_ids), Refund)
        s["website_chat_visits"] = _rows(await theirs(ChatWidgetVisitor), ChatWidgetVisitor)
        s["business_events"] = _rows(await theirs(BusinessEvent), BusinessEvent)
    return bundle


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def write_bundle(bundle: CustomerBundle, path: Path) -> None:
    """The ZIP: customer.json, a CSV per section, the attachments. Written beside `path`, then renamed."""
    partial = path.with_name(path.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        everything = {
            name: [{k: _plain(v) for k, v in row.items()} for row in rows]
            for name, rows in bundle.sections.items()
        }
        archive.writestr("customer.json", json.dumps(everything, ensure_ascii=False, indent=2, default=str))
        for name, rows in everything.items():
            if not rows:
                continue
            text = io.StringIO()
            writer = csv.DictWriter(text, fieldnames=list(rows[0]))
            writer.writeheader()
            for row in rows:
                writer.writerow(
                    {
                        k: json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v
                        for k, v in row.items()
                    }
                )
            archive.writestr(f"{name}.csv", text.getvalue())
        for name, content in bundle.attachments:
            archive.writestr(name, content)
    partial.replace(path)


async def record_export(
    database: Database, customer_id: int, actor: str, counts: dict[str, int], via: str = "cli"
) -> None:
    async with database.sessions() as session:
        session.add(
            AuditLog(
                actor=actor,
                via=via,
                action="customer.export",
                target=f"customer:{customer_id}",
                detail=counts,
            )
        )
        await session.commit()
