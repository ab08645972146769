"""Estimated cost of sending a message, in integer micro-units of currency (1 USD = 1_000_000 micros)."""

from __future__ import annotations

from dataclasses import dataclass

from domain.messages.segments import sms_shape
from domain.vocabulary import Channel, MessageCategory


@dataclass(frozen=True)
class PriceBook:
    """What each provider charges per unit, in micros of ``currency``."""

    currency: str
    sms_per_segment: int
    whatsapp_marketing: int  # template message in the marketing category
    whatsapp_utility: int  # template message in the utility category (order and appointment updates)
    whatsapp_service: int  # free-form reply inside the customer's 24-hour window
    email_per_message: int
    telegram_per_message: int = 0

    def __post_init__(self) -> None:
        prices = (
            self.sms_per_segment,
            self.whatsapp_marketing,
            self.whatsapp_utility,
            self.whatsapp_service,
            self.email_per_message,
            self.telegram_per_message,
        )
        if any(price < 0 for price in prices):
            raise ValueError("Prices cannot be negative.")


DEFAULT_PRICE_BOOK = PriceBook(
    currency="USD",
    sms_per_segment=7_900,
    whatsapp_marketing=25_000,
    whatsapp_utility=4_000,
    whatsapp_service=0,
    email_per_message=100,
    telegram_per_message=0,
)


def estimate_cost(
    channel: Channel,
    text: str,
    price_book: PriceBook = DEFAULT_PRICE_BOOK,
    *,
    category: MessageCategory,
    is_template: bool,
) -> int:
    """Micros one message is expected to cost; chat and video stay inside Switchboard and cost nothing."""
    if channel is Channel.SMS:
        return sms_shape(text).segments * price_book.sms_per_segment
    if channel is Channel.WHATSAPP:
        return _whatsapp_price(price_book, category, is_template)
    if channel is Channel.EMAIL:
        return price_book.email_per_message
    if channel is Channel.TELEGRAM:
        return price_book.telegram_per_message
    return 0


def _whatsapp_price(price_book: PriceBook, category: MessageCategory, is_template: bool) -> int:
    # Meta bills by the template's category; free-form messages can only be service replies.
    if not is_template:
        return price_book.whatsapp_service
    if category is MessageCategory.MARKETING:
        return price_book.whatsapp_marketing
    return price_book.whatsapp_utility
