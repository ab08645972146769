"""Masking customer contact details in replies that may be seen by people who do not need them."""

from __future__ import annotations

DOT = "•••"
#: Calling codes with one digit (NANP, Russia/Kazakhstan) and the first digits of three-digit codes.
_ONE_DIGIT = ("1", "7")
_THREE_DIGIT_PREFIXES = (
    "21",
    "22",
    "23",
    "24",
    "25",
    "26",
    "29",
    "35",
    "37",
    "38",
    "42",
    "50",
    "59",
    "67",
    "68",
    "69",
    "80",
    "85",
    "87",
    "88",
    "96",
    "97",
    "99",
)


def mask_phone(phone: str | None) -> str:
    """'+4915112345678' -> '+49 151 ••• 5678': enough to recognise, not enough to dial."""
    if not phone:
        return "—"
    digits = phone.lstrip("+")
    if len(digits) < 8:
        return f"+{DOT}{digits[-2:]}"
    if digits.startswith(_ONE_DIGIT):
        code_length = 1
    elif digits.startswith(_THREE_DIGIT_PREFIXES):
        code_length = 3
    else:
        code_length = 2
    code, national = digits[:code_length], digits[code_length:]
    return f"+{code} {national[:3]} {DOT} {national[-4:]}"


def spaced_phone(phone: str | None) -> str:
    """'+4915112345678' -> '+49 1511 2345678': a number shown in full, spaced as its country writes it."""
    if not phone:
        return "—"
    import phonenumbers  # loaded when a number is shown in full, as searches load it

    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return phone
    if not phonenumbers.is_possible_number(number):
        return phone
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def mask_email(email: str | None) -> str:
    """'jane.doe@example.com' -> 'j•••@example.com'."""
    if not email:
        return "—"
    local, _, domain = email.partition("@")
    return f"{local[:1]}{DOT}@{domain}" if domain else f"{email[:1]}{DOT}"


def mask_address(address: str | None, channel: str | None = None) -> str:
    """An address shortened for a chat: an email, a phone number, or (on Telegram) a chat id, never a number."""
    if address and channel == "telegram":
        return f"Telegram chat {DOT}{address[-4:]}"
    if address and "@" in address:
        return mask_email(address)
    if address and address.startswith("+"):
        return mask_phone(address)
    if address and address.isdigit() and len(address) >= 8:  # WhatsApp ids are phone numbers without "+"
        return mask_phone("+" + address)
    return f"{address[:2]}{DOT}" if address else "—"
