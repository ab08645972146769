"""The pooled aiohttp session every HTTP provider driver shares the shape of, and its failure rules."""

from __future__ import annotations

import asyncio
from datetime import UTC
from email.utils import parsedate_to_datetime

import aiohttp

from domain.clock import utc_now
from domain.delivery.ports import ProviderError


class PooledSession:
    """One lazily created `aiohttp.ClientSession` per driver, so connections are reused across sends.

    Created on first use rather than in `__init__` because a ClientSession must be born inside a
    running event loop, and drivers are built by wiring code that may run before the loop starts.
    """

    def __init__(
        self,
        *,
        total_timeout: float,
        connect_timeout: float = 5.0,
        connection_limit: int = 50,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(total=total_timeout, connect=connect_timeout)
        self._connection_limit = connection_limit
        self._headers = headers or {}
        self._session: aiohttp.ClientSession | None = None

    def get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=self._connection_limit, ttl_dns_cache=300),
                headers=self._headers,
                raise_for_status=False,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


def transport_failure(provider: str, exc: BaseException) -> ProviderError:
    """Turn a network-level failure into a ProviderError that says whether the send may have landed.

    A failure to connect means the request never left, so a plain retry is safe. A timeout or a
    reset once connected means the provider may have accepted the message before we lost the
    answer, so the outbox must treat the message as in doubt rather than send it again blindly.
    """
    if isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.ClientConnectorError):
        return ProviderError(f"{provider}: could not connect: {exc}", code="connect_failed")
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return ProviderError(f"{provider}: no answer before the timeout", code="timeout", maybe_accepted=True)
    return ProviderError(
        f"{provider}: connection lost mid-request: {type(exc).__name__}: {exc}",
        code="connection_lost",
        maybe_accepted=True,
    )


def retry_after_seconds(header_value: str | None, default: float | None = None) -> float | None:
    """Read a Retry-After header, which may be delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not header_value:
        return default
    value = header_value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - utc_now()).total_seconds())


def money_to_micros(amount: str | float | None) -> int | None:
    """Providers report prices as decimal strings, negative for a charge; we store positive micros."""
    if amount is None or amount == "":
        return None
    try:
        return round(abs(float(amount)) * 1_000_000)
    except (TypeError, ValueError):
        return None
