"""Estimated cost of sending a message, in integer micro-units of currency (1 USD = 1_000_000 micros)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType

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
    #: SMS per segment by the destination's calling code ("+49"), where it differs from `sms_per_segment`:
    #: an SMS to Germany costs about eleven times one inside the US.
    sms_by_calling_code: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        prices = (
            self.sms_per_segment,
            self.whatsapp_marketing,
            self.whatsapp_utility,
            self.whatsapp_service,
            self.email_per_message,
            self.telegram_per_message,
        )
        if any(price < 0 for price in (*prices, *(price for _, price in self.sms_by_calling_code))):
            raise ValueError("Prices cannot be negative.")

    def sms_segment_price(self, to_address: str | None) -> int:
        """What one segment to `to_address` (E.164) costs: its calling code's price, else `sms_per_segment`."""
        if to_address:
            for code, price in self.sms_by_calling_code:  # longest codes first
                if to_address.startswith(code):
                    # +1 is shared: Jamaica (+1 876) or the Dominican Republic (+1 809) cost what abroad does.
                    if code == "+1" and not _in_the_us_or_canada(to_address[:5]):
                        break
                    return price
        return self.sms_per_segment


@lru_cache(maxsize=1024)
def _in_the_us_or_canada(area: str) -> bool:
    """Whether a +1 area code ("+1212") is the US's or Canada's (their SMS cost about the same)."""
    import phonenumbers  # loaded for +1 numbers only; an area code is enough, so each is looked up once

    number = phonenumbers.parse(area + "5550123", None)
    return phonenumbers.region_code_for_number(number) in ("US", "CA", None)


def calling_code(region: str) -> str | None:
    """The calling code ("+49") of a country ("DE"), standing for any number there; None if unknown."""
    if not region:
        return None
    import phonenumbers

    code = phonenumbers.country_code_for_region(region.upper())
    return f"+{code}" if code else None


def priced_at_home(region: str, book: PriceBook | None = None) -> PriceBook:
    """`book` (the default one) with an SMS to a number of no listed country priced as one in `region` (the
    business's own country): what a preview without a recipient shows, as the bot's does."""
    from dataclasses import replace

    book = book or DEFAULT_PRICE_BOOK
    home = calling_code(region)
    return replace(book, sms_per_segment=book.sms_segment_price(home)) if home else book


#: Twilio's list prices per SMS segment, in USD micros, for the countries of the demo's clinics (the sandbox
#: reports the same; the seeded history was sent at them).
SMS_PRICE_BY_COUNTRY: Mapping[str, int] = MappingProxyType(
    {"DE": 87_500, "AT": 110_000, "CH": 68_000, "GB": 46_300, "US": 7_900}
)
_CALLING_CODES = {"DE": "+49", "AT": "+43", "CH": "+41", "GB": "+44", "US": "+1"}


DEFAULT_PRICE_BOOK = PriceBook(
    currency="USD",
    # Elsewhere: about what an SMS abroad costs, so an estimate errs high rather than at the US price.
    sms_per_segment=80_000,
    sms_by_calling_code=tuple(
        sorted(
            ((_CALLING_CODES[country], price) for country, price in SMS_PRICE_BY_COUNTRY.items()),
            key=lambda pair: -len(pair[0]),
        )
    ),
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
    to_address: str | None = None,
) -> int:
    """Micros one message is expected to cost; chat and video stay inside Switchboard and cost nothing."""
    if channel is Channel.SMS:
        return sms_shape(text).segments * price_book.sms_segment_price(to_address)
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
