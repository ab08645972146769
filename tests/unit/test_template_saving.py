"""Saving a template variant with a fake unit of work: validation first, then one commit with its audit row."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

import pytest

from domain.audit import AuditEntry
from domain.templates.model import MessageTemplate, TemplateChanged, TemplateError, TemplateRecord
from domain.templates.use_cases import save_template_variant
from domain.vocabulary import Channel, MessageCategory

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
REMINDER = MessageTemplate(
    "reminder",
    Channel.SMS,
    "en",
    "Hi {{ name }}, see you at {{ time }}.",
    MessageCategory.TRANSACTIONAL,
    variables=("name", "time"),
)


class FakeTemplateUow:
    """Keeps saved variants and audit entries only when committed."""

    def __init__(self) -> None:
        self.saved: dict[tuple[str, str, str], TemplateRecord] = {}
        self.audited: list[AuditEntry] = []
        self.commits = 0
        self._pending: list[TemplateRecord] = []
        self._entries: list[AuditEntry] = []

    @property
    def templates(self) -> Self:
        return self

    @property
    def audit(self) -> Self:
        return self

    async def __aenter__(self) -> Self:
        self._pending, self._entries = [], []
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._pending, self._entries = [], []

    async def commit(self) -> None:
        self.commits += 1
        self.saved.update({(r.name, r.channel, r.locale): r for r in self._pending})
        self.audited += self._entries

    async def save(
        self, variant: MessageTemplate, at: datetime, *, by: str | None = None, over: int | None = None
    ) -> TemplateRecord:
        key = (variant.name, variant.channel.value, variant.locale)
        before = self.saved.get(key)
        if over is not None and (before.version if before else 0) != over:
            raise TemplateChanged(before.version if before else None)
        record = TemplateRecord(
            id=before.id if before else len(self.saved) + 1,
            name=variant.name,
            channel=variant.channel.value,
            locale=variant.locale,
            category=variant.category.value,
            status="active",
            subject=variant.subject,
            body=variant.body,
            html_body=variant.html_body,
            variables=variant.variables,
            whatsapp_name=variant.whatsapp_name,
            whatsapp_language=variant.whatsapp_language,
            whatsapp_params=variant.whatsapp_params,
            version=(before.version if before else 0) + 1,
            updated_at=at,
        )
        self._pending.append(record)
        return record

    def record(self, entry: AuditEntry) -> None:
        self._entries.append(entry)


async def save(uow: FakeTemplateUow, variant: MessageTemplate) -> TemplateRecord:
    return await save_template_variant(uow, variant, actor="ops@clinic.test", via="api", now=NOW)


async def test_a_valid_variant_is_saved_with_its_audit_row_in_one_commit() -> None:
    uow = FakeTemplateUow()
    saved = await save(uow, REMINDER)
    assert (saved.version, saved.status, saved.updated_at) == (1, "active", NOW)
    assert uow.commits == 1
    assert uow.saved == {("reminder", "sms", "en"): saved}
    assert uow.audited == [
        AuditEntry("ops@clinic.test", "api", "template.save", "template:reminder/sms/en", {"version": 1})
    ]


async def test_saving_again_is_one_version_later() -> None:
    uow = FakeTemplateUow()
    await save(uow, REMINDER)
    again = await save(uow, replace(REMINDER, body="Hello {{ name }}, {{ time }} it is."))
    assert again.version == 2
    assert uow.commits == 2
    assert [e.detail for e in uow.audited] == [{"version": 1}, {"version": 2}]


@pytest.mark.parametrize(
    ("variant", "said"),
    [
        (replace(REMINDER, name="Reminder!"), "template names are lower-case letters"),
        (
            replace(REMINDER, channel=Channel.CHAT),
            "templates are for sms, email, whatsapp or telegram, not chat",
        ),
        (replace(REMINDER, body="Hi {{ nme }}."), "nme"),
        (replace(REMINDER, body="{{ ''.__class__.__mro__ }}", variables=()), None),
    ],
)
async def test_an_invalid_variant_is_refused_before_anything_is_written(
    variant: MessageTemplate, said: str | None
) -> None:
    uow = FakeTemplateUow()
    with pytest.raises(TemplateError, match=said):
        await save(uow, variant)
    assert (uow.commits, uow.saved, uow.audited) == (0, {}, [])
