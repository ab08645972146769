"""Fetching the files customers send before their message is applied: each checked, each with a time limit."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

from domain.conversations.attachments import (
    AttachmentRules,
    FileOutcome,
    MediaReference,
    MediaSource,
    MediaTooLarge,
    MediaUnavailable,
    RefusedFile,
    check_file,
    is_blocked_kind,
    kind_words,
    not_fetched_words,
    refusal_words,
    too_large_words,
)
from domain.conversations.model import CustomerMessage

log = logging.getLogger(__name__)

#: Who holds a file, in words.
PROVIDER_WORDS = {
    "whatsapp_cloud": "WhatsApp",
    "telegram": "Telegram",
    "twilio": "Twilio",
    "smtp": "the email",
}

#: Files by the provider message id of the message they came with.
FilesByMessage = Mapping[str, tuple[FileOutcome, ...]]


async def fetch_customer_files(
    messages: Sequence[CustomerMessage],
    source: MediaSource | None,
    rules: AttachmentRules,
    timeout_seconds: float,
) -> dict[str, tuple[FileOutcome, ...]]:
    """Every file the messages name, fetched at once and checked; a file that cannot be fetched in time,
    is too large or of a blocked type becomes a RefusedFile saying so (the message itself is never lost)."""
    wanted = [(message.message.provider_message_id, message.media) for message in messages if message.media]
    if not wanted:
        return {}
    outcomes = await asyncio.gather(
        *(
            asyncio.gather(*(_fetch_one(ref, source, rules, timeout_seconds) for ref in refs))
            for _, refs in wanted
        )
    )
    return {message_id: tuple(found) for (message_id, _), found in zip(wanted, outcomes, strict=True)}


async def _fetch_one(
    ref: MediaReference, source: MediaSource | None, rules: AttachmentRules, timeout_seconds: float
) -> FileOutcome:
    if ref.content is not None:
        return check_file(ref.content, ref.filename, ref.declared_type, rules)
    kind = kind_words(None, ref.declared_type, ref.kind)
    if is_blocked_kind(ref.declared_type, ref.kind):
        return RefusedFile(refusal_words(kind, ref.declared_size, ref.filename, rules))
    if ref.declared_size is not None and ref.declared_size > rules.max_bytes:
        return RefusedFile(too_large_words(kind, ref.declared_size, ref.filename, rules))
    where = PROVIDER_WORDS.get(ref.provider, ref.provider)
    if source is None:
        return RefusedFile(not_fetched_words(kind, ref.filename, where, "file downloads are not set up"))
    try:
        async with asyncio.timeout(timeout_seconds):
            content = await source.fetch(ref, rules.max_bytes)
    except MediaTooLarge as error:
        return RefusedFile(too_large_words(kind, error.size, ref.filename, rules))
    except MediaUnavailable as error:
        log.warning("could not fetch %s media %s: %s", ref.provider, ref.locator[:80], error)
        return RefusedFile(not_fetched_words(kind, ref.filename, where, str(error)))
    except TimeoutError:
        log.warning("fetching %s media %s took over %ss", ref.provider, ref.locator[:80], timeout_seconds)
        why = f"no answer within {timeout_seconds:g} seconds"
        return RefusedFile(not_fetched_words(kind, ref.filename, where, why))
    return check_file(content, ref.filename, ref.declared_type, rules)
