"""SMS encoding and segment counting, packed part by part the way carriers split long messages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: Twilio (and most carriers' gateways) refuse bodies longer than this many characters.
MAX_SMS_CHARACTERS = 1600

GSM7_SINGLE_SEGMENT = 160
GSM7_PART = 153  # 7 septets of every part go to the user data header that reassembles the parts
UCS2_SINGLE_SEGMENT = 70
UCS2_PART = 67

# 3GPP TS 23.038 basic character set. Position 0x09 is capital C-cedilla (Ç); small ç is not in the set.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)

# Characters reached through the escape code: each costs the escape septet plus its own.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

SmsEncoding = Literal["GSM-7", "UCS-2"]


class MessageTooLong(ValueError):
    """The body is longer than carriers accept in one (concatenated) SMS."""


@dataclass(frozen=True)
class SmsShape:
    """How an SMS body travels: its encoding, its length in that encoding and how many parts it needs."""

    encoding: SmsEncoding
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int
    characters: int  # Unicode code points, the measure of the 1,600-character body limit

    @property
    def is_too_long(self) -> bool:
        return self.characters > MAX_SMS_CHARACTERS


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def sms_shape(text: str) -> SmsShape:
    """Encoding, size and part count of ``text``; an empty body needs no segments."""
    if is_gsm7(text):
        weights = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
        return _shape("GSM-7", weights, GSM7_SINGLE_SEGMENT, GSM7_PART, len(text))
    weights = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    return _shape("UCS-2", weights, UCS2_SINGLE_SEGMENT, UCS2_PART, len(text))


def check_sms_length(text: str) -> None:
    """Raise MessageTooLong when the body is over the 1,600-character limit."""
    if len(text) > MAX_SMS_CHARACTERS:
        raise MessageTooLong(
            f"The SMS is {len(text):,} characters long; the limit is {MAX_SMS_CHARACTERS:,} characters."
        )


def _shape(encoding: SmsEncoding, weights: list[int], single: int, part: int, characters: int) -> SmsShape:
    units = sum(weights)
    if units == 0:
        segments = 0
    elif units <= single:
        segments = 1
    else:
        segments = _packed_parts(weights, part)
    return SmsShape(encoding=encoding, units=units, segments=segments, characters=characters)


def _packed_parts(weights: list[int], capacity: int) -> int:
    # An escape pair or a surrogate pair may not be cut between parts, so a two-unit character that
    # does not fit whole starts the next part and leaves one unit of the current part empty.
    parts = 1
    used = 0
    for weight in weights:
        if used + weight > capacity:
            parts += 1
            used = 0
        used += weight
    return parts
