"""Campaign use-cases: create, preview, launch, plan in resumable batches, pause, resume, cancel, fall back."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from domain.audit import AuditEntry
from domain.campaigns.model import (
    Audience,
    Campaign,
    CampaignDraft,
    CampaignError,
    CampaignPreview,
    CampaignProgress,
    PlanningProgress,
    RenderedSample,
    channels_after,
)
from domain.campaigns.ports import CampaignUnitOfWork
from domain.campaigns.rules import validate_channel_order, validate_fallback
from domain.clock import utc_now
from domain.consent.model import ConsentPolicy
from domain.consent.unsubscribe import UnsubscribeLinks
from domain.delivery.outbox import OutboxEntry
from domain.messages.model import Recipient
from domain.messages.pricing import DEFAULT_PRICE_BOOK, PriceBook
from domain.messages.send_decision import OutboxPlanner, check_variables
from domain.templates.model import TemplateError
from domain.templates.selection import language_of
from domain.vocabulary import CampaignStatus, Channel, MessageSource, MessageStatus

DEFAULT_BATCH_SIZE = 5_000
#: Rows per insert inside a batch; small enough that planning the next chunk overlaps the insert.
PIPELINE_CHUNK = 2_000
CANCELLED_REASON = "campaign_cancelled"
_LAUNCHABLE = (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED)


class CampaignNotFound(CampaignError):
    pass


async def create_campaign(
    uow: CampaignUnitOfWork,
    draft: CampaignDraft,
    now: datetime | None = None,
    *,
    actor: str | None = None,
    via: str = "system",
) -> Campaign:
    """Store a draft campaign after checking its audience, channels, fallback and variables."""
    audience = checked_draft(draft)
    async with uow:
        if not await uow.templates.variants(draft.template_name):
            raise CampaignError(f"There is no active template named '{draft.template_name}'.")
        campaign = await uow.campaigns.add(draft, audience, now or utc_now())
        _audit(uow, actor, via, "create", campaign)
        await uow.commit()
    return campaign


def checked_draft(draft: CampaignDraft) -> Audience:
    """Every check a draft passes before it is stored or previewed (the API, the wizard and chat share it)."""
    audience = Audience.from_json(draft.audience)
    order = validate_channel_order(draft.channel_order)
    validate_fallback(draft.fallback_after_minutes, order)
    try:
        check_variables(draft.variables)
    except TemplateError as error:
        raise CampaignError(str(error)) from None
    if not draft.slug.strip() or not draft.name.strip():
        raise CampaignError("A campaign needs a slug and a name.")
    return audience


async def preview_draft(
    uow: CampaignUnitOfWork,
    draft: CampaignDraft,
    *,
    now: datetime | None = None,
    policy: ConsentPolicy | None = None,
    price_book: PriceBook = DEFAULT_PRICE_BOOK,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> CampaignPreview:
    """What a campaign not yet saved would do (the wizard's live count); checked as `create_campaign`
    checks it, and writes nothing."""
    audience = checked_draft(draft)
    unsaved = Campaign(
        id=0,
        slug=draft.slug,
        name=draft.name,
        status=CampaignStatus.DRAFT,
        category=draft.category,
        template_name=draft.template_name,
        channel_order=tuple(draft.channel_order),
        audience=audience,
        variables=dict(draft.variables),
        fallback_after_minutes=draft.fallback_after_minutes,
        respect_quiet_hours=draft.respect_quiet_hours,
        scheduled_at=draft.scheduled_at,
        planning_cursor=0,
        planning_done=False,
        planned_count=0,
        excluded_count=0,
    )
    async with uow:
        if not await uow.templates.variants(draft.template_name):
            raise CampaignError(f"There is no active template named '{draft.template_name}'.")
    return await _preview(
        uow, unsaved, now=now or utc_now(), policy=policy, price_book=price_book, batch_size=batch_size
    )


async def preview_campaign(
    uow: CampaignUnitOfWork,
    campaign_id: int,
    *,
    now: datetime | None = None,
    policy: ConsentPolicy | None = None,
    price_book: PriceBook = DEFAULT_PRICE_BOOK,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> CampaignPreview:
    """What launching would do: recipients, exclusions by reason, channels, cost and a sample; writes nothing.

    It reads the whole audience, so give it a read-only unit of work (on SQLite a write one would hold the
    write lock for the whole preview).
    """
    async with uow:
        campaign = await _campaign(uow, campaign_id)
    return await _preview(
        uow, campaign, now=now or utc_now(), policy=policy, price_book=price_book, batch_size=batch_size
    )


async def _preview(
    uow: CampaignUnitOfWork,
    campaign: Campaign,
    *,
    now: datetime,
    policy: ConsentPolicy | None,
    price_book: PriceBook,
    batch_size: int,
) -> CampaignPreview:
    exclusions: Counter[str] = Counter()
    per_channel: Counter[str] = Counter()
    per_language: Counter[str] = Counter()
    in_another_language: Counter[tuple[str, str]] = Counter()
    recipients = planned = deferred = cost = 0
    sample: RenderedSample | None = None
    async with uow:
        planner = await _planner(uow, campaign, policy or ConsentPolicy(), price_book)
        at = _send_moment(campaign, now)
        cursor = 0
        while True:
            page = await uow.recipients.page(
                campaign.audience,
                after_id=cursor,
                limit=batch_size,
                channels=campaign.channel_order,
                now=now,
                exclude_campaign_id=campaign.id,
            )
            for recipient in page:
                entry = planner.plan(recipient, campaign.channel_order, at)
                recipients += 1
                if entry.status is MessageStatus.SUPPRESSED:
                    exclusions[entry.status_reason or "unknown"] += 1
                    continue
                planned += 1
                per_channel[entry.channel] += 1
                # The language of the variant they get, whose values it reads (a German patient gets the English
                # variant of a template written only in English).
                variant = planner.template_for(entry.channel, recipient.locale)
                theirs = language_of(recipient.locale)
                got = language_of(variant.template.locale) if variant else theirs
                per_language[got] += 1
                if got != theirs:
                    in_another_language[(theirs, got)] += 1
                cost += entry.cost_micros or 0
                deferred += entry.send_at is not None and entry.send_at > at
                if sample is None:
                    sample = _shown_sample(recipient.customer_id, entry, planner.policy.unsubscribe_links)
            if len(page) < batch_size:
                break
            cursor = page[-1].customer_id
    return CampaignPreview(
        recipients=recipients,
        planned=planned,
        exclusions=dict(exclusions),
        per_channel={
            channel: per_channel[channel] for channel in campaign.channel_order if per_channel[channel]
        },
        estimated_cost_micros=cost,
        currency=price_book.currency,
        deferred=deferred,
        sample=sample,
        per_language=dict(per_language),
        in_another_language=dict(in_another_language),
    )


def _shown_sample(customer_id: int, entry: OutboxEntry, links: UnsubscribeLinks | None) -> RenderedSample:
    """The first recipient's message as staff see it: their own unsubscribe link, which would opt them out if
    a curious colleague clicked it in the preview, reads as the example link instead."""
    body, subject = entry.body, entry.subject
    if links is not None:
        theirs = links.url(customer_id, entry.channel)
        body = body.replace(theirs, links.example())
        subject = subject.replace(theirs, links.example()) if subject else subject
    return RenderedSample(customer_id, entry.channel, entry.to_address, body, subject)


async def launch_campaign(
    uow: CampaignUnitOfWork,
    campaign_id: int,
    now: datetime | None = None,
    *,
    actor: str | None = None,
    via: str = "system",
) -> Campaign:
    """Mark a draft or scheduled campaign running; planning (plan_campaign_batch) may start."""
    async with uow:
        campaign = await _campaign(uow, campaign_id, for_update=True)
        if campaign.status not in _LAUNCHABLE:
            raise CampaignError(f"A {campaign.status.value} campaign cannot be launched.")
        await uow.campaigns.set_status(campaign_id, CampaignStatus.RUNNING, launched_at=now or utc_now())
        launched = await _campaign(uow, campaign_id)
        _audit(uow, actor, via, "launch", launched)
        await uow.commit()
    return launched


class RecipientsAhead:
    """Reads the next page of a campaign's audience on a read-only unit of work while the current page is
    being inserted, so the database reads it on another connection instead of between two batches.

    A page read ahead is used only by the batch that starts at the cursor it was read after; anything
    else is thrown away. The page is as fresh as the moment it was read, a fraction of a second before
    its batch: an opt-out landing in between is still caught when the message is claimed for sending.
    """

    def __init__(
        self, open_read_uow: Callable[[], CampaignUnitOfWork], campaign: Campaign, limit: int
    ) -> None:
        self._open = open_read_uow
        self._campaign = campaign
        self._limit = limit
        self._pending: tuple[int, asyncio.Task[list[Recipient]]] | None = None

    def start(self, after_id: int, now: datetime) -> None:
        self.discard()
        self._pending = (after_id, asyncio.create_task(self._read(after_id, now), name="recipients ahead"))

    async def take(self, after_id: int) -> list[Recipient] | None:
        pending, self._pending = self._pending, None
        if pending is None:
            return None
        cursor, task = pending
        if cursor != after_id:
            task.cancel()
            return None
        try:
            return await task
        except Exception:  # the batch reads the page itself, and reports any real failure
            return None

    def discard(self) -> None:
        if self._pending is not None:
            self._pending[1].cancel()
            self._pending = None

    async def _read(self, after_id: int, now: datetime) -> list[Recipient]:
        campaign = self._campaign
        async with self._open() as uow:
            page: list[Recipient] = await uow.recipients.page(
                campaign.audience,
                after_id=after_id,
                limit=self._limit,
                channels=campaign.channel_order,
                now=now,
                exclude_campaign_id=campaign.id,
            )
        return page


async def plan_campaign_batch(
    uow: CampaignUnitOfWork,
    campaign_id: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
    *,
    now: datetime | None = None,
    policy: ConsentPolicy | None = None,
    price_book: PriceBook = DEFAULT_PRICE_BOOK,
    planner: OutboxPlanner | None = None,
    ahead: RecipientsAhead | None = None,
) -> PlanningProgress:
    """Plan the next ``batch_size`` audience members into the outbox, and move the cursor, in one transaction.

    A crash before the commit loses the batch's rows and its cursor move together, so the next run redoes
    exactly that batch; a cursor that is ever behind only meets idempotency keys that already exist.
    Pass the ``planner`` of the previous batch to keep its rendering cache warm.
    """
    now = now or utc_now()
    async with uow:
        campaign = await _campaign(uow, campaign_id, for_update=True)
        if campaign.status is not CampaignStatus.RUNNING or campaign.planning_done:
            return _progress(campaign)
        planner = planner or await _planner(uow, campaign, policy or ConsentPolicy(), price_book)
        recipients = await ahead.take(campaign.planning_cursor) if ahead is not None else None
        if recipients is None:
            recipients = await uow.recipients.page(
                campaign.audience,
                after_id=campaign.planning_cursor,
                limit=batch_size,
                channels=campaign.channel_order,
                now=now,
                exclude_campaign_id=campaign.id,
            )
        if ahead is not None and len(recipients) == batch_size:
            ahead.start(recipients[-1].customer_id, now)
        at = _send_moment(campaign, now)
        inserted = await _plan_and_insert(uow, planner, recipients, campaign.channel_order, at, now)
        cursor = recipients[-1].customer_id if recipients else campaign.planning_cursor
        planned, excluded = inserted[MessageStatus.PLANNED], inserted[MessageStatus.SUPPRESSED]
        done = len(recipients) < batch_size
        await uow.campaigns.record_planning(
            campaign_id, cursor=cursor, planned=planned, excluded=excluded, done=done
        )
        await uow.commit()
    return PlanningProgress(
        campaign_id,
        cursor,
        planned,
        excluded,
        done,
        campaign.planned_count + planned,
        campaign.excluded_count + excluded,
    )


async def plan_campaign(
    uow_factory: Callable[[], CampaignUnitOfWork],
    campaign_id: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
    *,
    now: Callable[[], datetime] | None = None,
    policy: ConsentPolicy | None = None,
    price_book: PriceBook = DEFAULT_PRICE_BOOK,
    budget: float | None = None,
    read_uow_factory: Callable[[], CampaignUnitOfWork] | None = None,
) -> PlanningProgress:
    """Plan batch after batch, each in its own transaction, until the audience is done, planning stops, or
    ``budget`` (seconds) is spent (the batch under way is finished first; the cursor resumes the rest).

    With ``read_uow_factory`` (read-only units of work on other connections) each next page of the
    audience is read while the current one is being inserted.
    """
    clock = now or utc_now
    policy = policy or ConsentPolicy()
    async with uow_factory() as uow:
        campaign = await _campaign(uow, campaign_id)
        planner = await _planner(uow, campaign, policy, price_book)
    ahead = RecipientsAhead(read_uow_factory, campaign, batch_size) if read_uow_factory is not None else None
    deadline = None if budget is None else time.monotonic() + budget
    try:
        while True:
            progress = await plan_campaign_batch(
                uow_factory(),
                campaign_id,
                batch_size,
                now=clock(),
                policy=policy,
                price_book=price_book,
                planner=planner,
                ahead=ahead,
            )
            if progress.done or not progress.running:
                return progress
            if deadline is not None and time.monotonic() >= deadline:
                return progress
    finally:
        if ahead is not None:
            ahead.discard()


async def pause_campaign(
    uow: CampaignUnitOfWork, campaign_id: int, *, actor: str | None = None, via: str = "system"
) -> Campaign:
    """Stop sending and planning; planned rows stay in the outbox but are not claimable while paused."""
    moved = await _move(
        uow, campaign_id, CampaignStatus.RUNNING, CampaignStatus.PAUSED, (actor, via, "pause")
    )
    return moved


async def resume_campaign(
    uow: CampaignUnitOfWork, campaign_id: int, *, actor: str | None = None, via: str = "system"
) -> Campaign:
    return await _move(
        uow, campaign_id, CampaignStatus.PAUSED, CampaignStatus.RUNNING, (actor, via, "resume")
    )


async def cancel_campaign(
    uow: CampaignUnitOfWork, campaign_id: int, *, actor: str | None = None, via: str = "system"
) -> int:
    """Cancel the campaign and every row still planned; rows already claimed or sent are left alone."""
    async with uow:
        campaign = await _campaign(uow, campaign_id, for_update=True)
        if campaign.status in (CampaignStatus.CANCELLED, CampaignStatus.COMPLETED):
            raise CampaignError(f"A {campaign.status.value} campaign cannot be cancelled.")
        await uow.campaigns.set_status(campaign_id, CampaignStatus.CANCELLED)
        cancelled = await uow.campaigns.cancel_planned(campaign_id, CANCELLED_REASON)
        _audit(uow, actor, via, "cancel", campaign)
        await uow.commit()
    return cancelled


async def campaign_progress(uow: CampaignUnitOfWork, campaign_id: int) -> CampaignProgress:
    """Where its messages stand; for a running campaign with a channel fallback, also who waits for it."""
    async with uow:
        campaign = await _campaign(uow, campaign_id)
        progress = await uow.campaigns.progress(campaign_id)
        if campaign.fallback_after_minutes and campaign.status is CampaignStatus.RUNNING:
            waiting = await uow.campaigns.fallbacks_waiting(campaign)
            since = waiting.failed_since
            progress = replace(
                progress,
                fallbacks_waiting=waiting.failed,
                next_fallback_at=since + timedelta(minutes=campaign.fallback_after_minutes)
                if since
                else None,
                unconfirmed=waiting.unconfirmed,
                fallback_after_minutes=campaign.fallback_after_minutes,
            )
        return progress


async def plan_fallbacks(
    uow: CampaignUnitOfWork,
    campaign_id: int,
    now: datetime | None = None,
    *,
    policy: ConsentPolicy | None = None,
    price_book: PriceBook = DEFAULT_PRICE_BOOK,
    limit: int = DEFAULT_BATCH_SIZE,
) -> int:
    """Enqueue the next channel for recipients whose latest message is not delivered after the fallback delay.

    Each channel has its own idempotency key, so a fallback can never send twice on one channel; when no
    later channel qualifies a suppressed row records why, which also stops the recipient being re-examined.
    Returns the number of rows added.
    """
    now = now or utc_now()
    async with uow:
        campaign = await _campaign(uow, campaign_id, for_update=True)
        if campaign.fallback_after_minutes is None or campaign.status is not CampaignStatus.RUNNING:
            return 0
        cutoff = now - timedelta(minutes=campaign.fallback_after_minutes)
        candidates = await uow.campaigns.fallback_candidates(campaign, cutoff, limit)
        if not candidates:
            return 0
        planner = await _planner(uow, campaign, policy or ConsentPolicy(), price_book)
        recipients = {
            r.customer_id: r
            for r in await uow.recipients.by_ids(
                [c.customer_id for c in candidates],
                channels=campaign.channel_order,
                now=now,
                campaign_type=campaign.audience.campaign_type,
                exclude_campaign_id=campaign.id,
            )
        }
        entries = []
        for candidate in candidates:
            later = channels_after(campaign.channel_order, candidate.channel)
            recipient = recipients.get(candidate.customer_id)
            if later and recipient is not None:
                entries.append(planner.plan(recipient, later, now))
        inserted = await uow.outbox_writer.add_many(entries, now)
        await uow.commit()
    return sum(inserted.values())


async def _plan_and_insert(
    uow: CampaignUnitOfWork,
    planner: OutboxPlanner,
    recipients: Sequence[Recipient],
    order: Sequence[Channel],
    at: datetime,
    now: datetime,
) -> Counter[str]:
    """Plan chunk k+1 in Python while the database inserts chunk k.

    SQLite (in aiosqlite's thread) and asyncpg do their work outside the GIL, so on two cores planning
    and inserting overlap instead of taking turns. Chunks go in order within the batch's transaction.
    """
    inserted: Counter[str] = Counter()
    pending: asyncio.Future[Counter[str]] | None = None
    try:
        for start in range(0, len(recipients), PIPELINE_CHUNK):
            entries = [planner.plan(r, order, at) for r in recipients[start : start + PIPELINE_CHUNK]]
            if pending is not None:
                inserted += await pending
            pending = asyncio.ensure_future(uow.outbox_writer.add_many(entries, now))
            await asyncio.sleep(0)  # let the insert reach the driver before planning the next chunk
        if pending is not None:
            inserted += await pending
    except BaseException:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        raise
    return inserted


async def _planner(
    uow: CampaignUnitOfWork, campaign: Campaign, policy: ConsentPolicy, price_book: PriceBook
) -> OutboxPlanner:
    templates = await uow.templates.variants(campaign.template_name)
    return OutboxPlanner(
        source=MessageSource.CAMPAIGN,
        source_ref=str(campaign.id),
        category=campaign.category,
        templates=templates,
        variables=campaign.variables,
        policy=policy,
        price_book=price_book,
        campaign_id=campaign.id,
        campaign_type=campaign.audience.campaign_type,
        respect_quiet_hours=campaign.respect_quiet_hours,
    )


async def _move(
    uow: CampaignUnitOfWork,
    campaign_id: int,
    expected: CampaignStatus,
    target: CampaignStatus,
    audited: tuple[str | None, str, str],
) -> Campaign:
    async with uow:
        campaign = await _campaign(uow, campaign_id, for_update=True)
        if campaign.status is not expected:
            raise CampaignError(f"Only a {expected.value} campaign can become {target.value}.")
        await uow.campaigns.set_status(campaign_id, target)
        moved = await _campaign(uow, campaign_id)
        actor, via, verb = audited
        _audit(uow, actor, via, verb, moved)
        await uow.commit()
    return moved


def _audit(uow: CampaignUnitOfWork, actor: str | None, via: str, verb: str, campaign: Campaign) -> None:
    """A person's change to a campaign is audited in the transaction that makes it (system moves are not)."""
    if actor is not None:
        uow.audit.record(
            AuditEntry(actor=actor, via=via, action=f"campaign.{verb}", target=f"campaign:{campaign.slug}")
        )


async def _campaign(uow: CampaignUnitOfWork, campaign_id: int, *, for_update: bool = False) -> Campaign:
    campaign = await uow.campaigns.get(campaign_id, for_update=for_update)
    if campaign is None:
        raise CampaignNotFound(f"There is no campaign {campaign_id}.")
    return campaign


def _send_moment(campaign: Campaign, now: datetime) -> datetime:
    """A scheduled campaign is decided (quiet hours included) as of its start, never earlier than now."""
    if campaign.scheduled_at is not None and campaign.scheduled_at > now:
        return campaign.scheduled_at
    return now


def _progress(campaign: Campaign) -> PlanningProgress:
    """Progress of a campaign this run did not plan (not running, or already fully planned)."""
    return PlanningProgress(
        campaign.id,
        campaign.planning_cursor,
        0,
        0,
        campaign.planning_done,
        campaign.planned_count,
        campaign.excluded_count,
        running=campaign.status is CampaignStatus.RUNNING,
    )


#: "Whenever": fallback candidates however recently they failed.
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


async def complete_campaign_if_done(uow: CampaignUnitOfWork, campaign_id: int) -> bool:
    """Marks a running campaign completed once it is fully planned and nothing is waiting to be sent.

    With a channel fallback, the campaign stays running while any message may still go on to the next
    channel (`plan_fallbacks` runs only for a running campaign): one that failed or bounced, until its
    fallback is planned once the delay has passed, and one not yet delivered on a channel whose "sent" can
    fall back. An email stuck at "sent" (a relay without delivery reports) or a last channel's message
    waiting for its receipt holds nothing up: neither can fall back.
    """
    async with uow:
        campaign = await _campaign(uow, campaign_id, for_update=True)
        if campaign.status is not CampaignStatus.RUNNING or not campaign.planning_done:
            return False
        progress = await uow.campaigns.progress(campaign_id)
        if any(progress.count(status) for status in ("planned", "sending")):
            return False
        if campaign.fallback_after_minutes and await uow.campaigns.fallback_candidates(
            campaign, FAR_FUTURE, 1
        ):
            return False
        await uow.campaigns.set_status(campaign_id, CampaignStatus.COMPLETED)
        await uow.commit()
    return True


async def advance_running_campaigns(
    uow_factory: Callable[[], CampaignUnitOfWork],
    *,
    now: Callable[[], datetime],
    policy: ConsentPolicy,
    budget: float,
    read_uow_factory: Callable[[], CampaignUnitOfWork],
) -> int:
    """The worker's campaign pass: the next batches of every running campaign, the channel fallbacks
    that are due, and completion of campaigns whose planning is done; returns the messages planned.

    Each campaign plans whole batches for up to `budget` seconds (a million recipients take well under
    a minute), then the fallbacks, completions and other campaigns get their turn.
    """
    async with read_uow_factory() as uow:
        running = await uow.campaigns.running()
    planned = 0
    for campaign in running:
        if not campaign.planning_done:
            async with read_uow_factory() as uow:
                # Read just before planning: another worker or an earlier campaign's turn may have moved it.
                current = await uow.campaigns.get(campaign.id)
            before = current.planned_count if current is not None else campaign.planned_count
            progress = await plan_campaign(
                uow_factory,
                campaign.id,
                now=now,
                policy=policy,
                budget=budget,
                read_uow_factory=read_uow_factory,
            )
            planned += progress.total_planned - before
        if campaign.fallback_after_minutes:
            planned += await plan_fallbacks(uow_factory(), campaign.id, now(), policy=policy)
        if campaign.planning_done:
            await complete_campaign_if_done(uow_factory(), campaign.id)
    return planned
