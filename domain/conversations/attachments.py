"""Files in a conversation: which are kept (images and PDFs up to a size, by their first bytes), and the words when one is not."""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

#: Ten megabytes: SWITCHBOARD_ATTACHMENT_MAX_BYTES when unset.
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
#: What a kept file may be (its content type, found from its first bytes) and the extension it is named with.
ALLOWED_TYPES: dict[str, str] = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "application/pdf": ".pdf",
}
#: The longest file name kept (the column holds 255; names beyond this are shortened, keeping the extension).
MAX_FILENAME = 120


@dataclass(frozen=True)
class AttachmentRules:
    """How large a kept file may be; every channel and the reply box use the same rules."""

    max_bytes: int = DEFAULT_MAX_BYTES


@dataclass(frozen=True)
class MediaReference:
    """A file a customer sent, as the webhook names it: what the provider says it is and how to ask for it.

    `locator` is the provider's handle (a WhatsApp media id, a Telegram file_id, a Twilio media URL);
    `content` is the file itself when it came inside the webhook (an email's MIME part).
    """

    provider: str
    locator: str
    kind: str  # the provider's word: image, document, photo, video, voice ...
    declared_type: str | None = None
    filename: str | None = None
    declared_size: int | None = None
    content: bytes | None = None


@dataclass(frozen=True)
class KeptFile:
    """A file that passed the rules, ready to store."""

    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    content: bytes


@dataclass(frozen=True)
class RefusedFile:
    """A file that was not kept (too large, a blocked type, or not fetched), and why in words."""

    reason: str


FileOutcome = KeptFile | RefusedFile


class MediaTooLarge(Exception):
    """The provider's file is larger than the limit; `size` when the provider said how large."""

    def __init__(self, size: int | None) -> None:
        super().__init__(f"larger than the limit ({size} bytes)" if size else "larger than the limit")
        self.size = size


class MediaUnavailable(Exception):
    """The provider would not hand the file over; the message says why, in words."""


class MediaSource(Protocol):
    """Fetches the files customers send from the providers that hold them (providers/media.py)."""

    async def fetch(self, reference: MediaReference, max_bytes: int) -> bytes:
        """The file's bytes; MediaTooLarge past `max_bytes` (stopping the download there); MediaUnavailable
        with the reason in words."""


# --- what a file is, from its first bytes -----------------------------------------------------------------


def sniff_type(content: bytes) -> str | None:
    """The allowed content type the file's magic number shows, or None when it is none of them."""
    if content.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if content.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    if content.startswith(b"%PDF-"):
        return "application/pdf"
    return None


#: Blocked files recognised by their first bytes, named in words.
_BLOCKED_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"MZ", 0, "program"),
    (b"\x7fELF", 0, "program"),
    (b"\xca\xfe\xba\xbe", 0, "program"),
    (b"#!", 0, "script"),
    (b"PK\x03\x04", 0, "archive"),
    (b"Rar!", 0, "archive"),
    (b"7z\xbc\xaf", 0, "archive"),
    (b"\x1f\x8b", 0, "archive"),
    (b"ftyp", 4, "video"),
    (b"\x1aE\xdf\xa3", 0, "video"),
    (b"OggS", 0, "audio recording"),
    (b"ID3", 0, "audio recording"),
    (b"#!AMR", 0, "audio recording"),
)

#: The provider's word for a kind of media, in ours.
_KIND_WORDS = {
    "photo": "image",
    "image": "image",
    "sticker": "sticker",
    "document": "file",
    "video": "video",
    "video_note": "video",
    "animation": "video",
    "audio": "audio recording",
    "voice": "voice message",
}


def kind_words(content: bytes | None, declared_type: str | None, provider_kind: str | None = None) -> str:
    """What a file is, in words ("image", "PDF", "video", "program"), from its bytes before any claim."""
    if content:
        sniffed = sniff_type(content)
        if sniffed is not None:
            return "PDF" if sniffed == "application/pdf" else "image"
        for signature, offset, words in _BLOCKED_SIGNATURES:
            if content[offset : offset + len(signature)] == signature:
                return words
    major = (declared_type or "").split("/", 1)[0].strip().lower()
    if major in ("video", "audio"):
        return "video" if major == "video" else "audio recording"
    if content is None and provider_kind:
        return _KIND_WORDS.get(provider_kind, "file")
    return "file"


def is_blocked_kind(declared_type: str | None, provider_kind: str) -> bool:
    """A video, voice note or audio file is refused without downloading it: it can never be kept."""
    major = (declared_type or "").split("/", 1)[0].strip().lower()
    return major in ("video", "audio") or _KIND_WORDS.get(provider_kind) in (
        "video",
        "audio recording",
        "voice message",
    )


# --- names and sizes --------------------------------------------------------------------------------------

#: Extensions that may stand for each kept type.
_EXTENSIONS_OF = {
    "image/jpeg": (".jpg", ".jpeg"),
    "image/png": (".png",),
    "image/gif": (".gif",),
    "image/webp": (".webp",),
    "application/pdf": (".pdf",),
}
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*;\u202a-\u202e\u2066-\u2069]+')


def sanitise_filename(name: str | None, content_type: str) -> str:
    """A file name safe to show and to download: no folders, control or direction characters, quotes or
    reserved characters, at most MAX_FILENAME long, and the extension of what the file really is."""
    text = unicodedata.normalize("NFKC", name or "")
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = _UNSAFE.sub("_", text)
    text = " ".join(text.split()).strip(" ._")
    extension = ALLOWED_TYPES.get(content_type, "")
    stem, dot, given = text.rpartition(".")
    if dot and stem and f".{given.lower()}" in _EXTENSIONS_OF.get(content_type, ()):
        extension = f".{given}"  # the name already says what the file is: keep its spelling
    else:
        stem = text  # a wrong extension stays part of the name: "invoice.exe" becomes "invoice.exe.pdf"
    stem = stem.strip(" ._") or ("document" if content_type == "application/pdf" else "image")
    return stem[: MAX_FILENAME - len(extension)].rstrip(" ._") + extension


def size_words(size: int) -> str:
    """ "14 MB", "2.5 MB", "820 KB", "312 bytes" (binary units, as the limit is counted)."""
    if size >= 1024 * 1024:
        megabytes = size / (1024 * 1024)
        return f"{megabytes:.0f} MB" if megabytes >= 10 or megabytes.is_integer() else f"{megabytes:.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size} bytes" if size != 1 else "1 byte"


def _with_article(words: str) -> str:
    first = words.split(" ", 1)[0]
    number = first.split(".", 1)[0]
    vowel_sound = words[:1].lower() in "aeio" or words.startswith("MB") or number.startswith("8")
    vowel_sound = vowel_sound or (len(number) in (2, 5) and number.startswith(("11", "18")))
    return ("An " if vowel_sound else "A ") + words


def limits_words(rules: AttachmentRules) -> str:
    return f"files up to {size_words(rules.max_bytes)}, images and PDFs only"


def refusal_words(kind: str, size: int | None, filename: str | None, rules: AttachmentRules) -> str:
    """ "A 14 MB video (clip.mp4) was not kept: files up to 10 MB, images and PDFs only." """
    shown = f"{size_words(size)} {kind}" if size and size >= 1024 else kind
    named = f" ({sanitised_for_words(filename)})" if filename else ""
    return f"{_with_article(shown)}{named} was not kept: {limits_words(rules)}."


def too_large_words(kind: str, size: int | None, filename: str | None, rules: AttachmentRules) -> str:
    if size is None:
        named = f" ({sanitised_for_words(filename)})" if filename else ""
        return f"{_with_article(kind)}{named} over {size_words(rules.max_bytes)} was not kept: {limits_words(rules)}."
    return refusal_words(kind, size, filename, rules)


def not_fetched_words(kind: str, filename: str | None, provider_name: str, why: str) -> str:
    """The note when a provider would not hand a file over: the rest of the message still arrived."""
    named = f" ({sanitised_for_words(filename)})" if filename else ""
    return (
        f"Could not fetch the {kind}{named} the customer sent from {provider_name}: {why.rstrip('.')}. "
        "Ask them to send it again."
    )


def sanitised_for_words(filename: str) -> str:
    text = _UNSAFE.sub("_", unicodedata.normalize("NFKC", filename)).strip()
    return text[:MAX_FILENAME]


# --- the decision -----------------------------------------------------------------------------------------


def check_file(
    content: bytes, filename: str | None, declared_type: str | None, rules: AttachmentRules
) -> FileOutcome:
    """Keep the file when its first bytes show an allowed type and it is within the size limit; the declared
    type is never trusted (an .exe named photo.png is refused)."""
    if len(content) > rules.max_bytes:
        return RefusedFile(refusal_words(kind_words(content, declared_type), len(content), filename, rules))
    sniffed = sniff_type(content)
    if sniffed is None:
        kind = kind_words(content, declared_type)
        return RefusedFile(refusal_words(kind, len(content), filename, rules))
    return KeptFile(
        filename=sanitise_filename(filename, sniffed),
        content_type=sniffed,
        size_bytes=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        content=content,
    )


def is_image(content_type: str) -> bool:
    return content_type.startswith("image/") and content_type in ALLOWED_TYPES


@dataclass(frozen=True)
class TurnFile:
    """A kept file as a conversation shows it (without its bytes): staff open it by its id."""

    id: int
    filename: str
    content_type: str
    size_bytes: int

    @property
    def is_image(self) -> bool:
        return is_image(self.content_type)

    @property
    def label(self) -> str:
        """ "scan.pdf (2.5 MB)" """
        return f"{self.filename} ({size_words(self.size_bytes)})"


def attachment_path(attachment_id: int) -> str:
    """Where signed-in staff open a kept file on the dashboard."""
    return f"/communication/chat/attachments/{attachment_id}"


# --- files staff send: a signed, expiring public link the customer's provider (or the customer) opens ------

#: How long a link to a file sent to a customer keeps working.
MEDIA_LINK_VALID = timedelta(days=7)


@dataclass(frozen=True)
class MediaLinks:
    """Signs and checks /media/{chat}/{sha256}?expires=…&sig=… links to files staff send to customers."""

    public_url: str
    secret: str
    valid_for: timedelta = MEDIA_LINK_VALID

    def _signature(self, chat_id: int, sha256: str, expires: int) -> str:
        message = f"media:{chat_id}:{sha256}:{expires}".encode()
        return hmac.new(self.secret.encode(), message, hashlib.sha256).hexdigest()[:32]

    def link(self, chat_id: int, sha256: str, now: datetime) -> str:
        expires = int((now + self.valid_for).timestamp())
        signature = self._signature(chat_id, sha256, expires)
        return f"{self.public_url.rstrip('/')}/media/{chat_id}/{sha256}?expires={expires}&sig={signature}"

    def check(self, chat_id: int, sha256: str, expires: str, signature: str, now: datetime) -> bool:
        """True when the link is one we signed and has not expired."""
        if not expires.isdigit() or not signature.isascii() or len(sha256) != 64:
            return False
        expected = self._signature(chat_id, sha256, int(expires))
        return hmac.compare_digest(expected, signature) and int(expires) >= now.timestamp()


def with_file_link(body: str, file: KeptFile, link: str) -> str:
    """The reply as the customer gets it: the words, then the file by name, size and link."""
    return f"{body.rstrip()}\n\n📎 {file.filename} ({size_words(file.size_bytes)}): {link}"
