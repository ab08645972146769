"""Attachment rules: the type comes from the first bytes, sizes are limited, names are made safe."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.conversations.attachments import (
    AttachmentRules,
    KeptFile,
    RefusedFile,
    check_file,
    is_blocked_kind,
    kind_words,
    not_fetched_words,
    refusal_words,
    sanitise_filename,
    size_words,
    sniff_type,
    too_large_words,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
GIF = b"GIF89a" + b"\x00" * 64
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 64
PDF = b"%PDF-1.7\n" + b"\x00" * 64
EXE = b"MZ\x90\x00" + b"\x00" * 64
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64
RULES = AttachmentRules()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (GIF, "image/gif"),
        (WEBP, "image/webp"),
        (PDF, "application/pdf"),
        (EXE, None),
        (MP4, None),
        (b"", None),
        (b"RIFF\x00\x00\x00\x00WAVE", None),
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script>", None),
        (b"<html><script>alert(1)</script>", None),
    ],
)
def test_the_type_comes_from_the_first_bytes(content: bytes, expected: str | None) -> None:
    assert sniff_type(content) == expected


def test_an_exe_named_png_and_declared_png_is_refused_as_a_program() -> None:
    outcome = check_file(EXE, "photo.png", "image/png", RULES)
    assert isinstance(outcome, RefusedFile)
    assert outcome.reason == "A program (photo.png) was not kept: files up to 10 MB, images and PDFs only."


def test_a_png_declared_as_something_else_is_kept_as_a_png() -> None:
    outcome = check_file(PNG, "scan", "application/octet-stream", RULES)
    assert isinstance(outcome, KeptFile)
    assert (outcome.content_type, outcome.filename, outcome.size_bytes) == ("image/png", "scan.png", len(PNG))
    assert len(outcome.sha256) == 64


def test_a_file_at_the_limit_is_kept_and_one_byte_more_is_refused_with_its_size() -> None:
    rules = AttachmentRules(max_bytes=len(PDF))
    assert isinstance(check_file(PDF, "a.pdf", None, rules), KeptFile)
    refused = check_file(PDF + b"x", "a.pdf", None, rules)
    assert isinstance(refused, RefusedFile)
    assert "was not kept" in refused.reason and "PDF" in refused.reason


def test_the_words_for_a_large_video_say_its_size_and_the_limits() -> None:
    words = refusal_words("video", 14 * 1024 * 1024, None, RULES)
    assert words == "A 14 MB video was not kept: files up to 10 MB, images and PDFs only."
    assert refusal_words("image", 11 * 1024 * 1024, "x.png", RULES).startswith("An 11 MB image (x.png)")
    assert too_large_words("image", None, None, RULES) == (
        "An image over 10 MB was not kept: files up to 10 MB, images and PDFs only."
    )


def test_blocked_kinds_and_their_words() -> None:
    assert kind_words(MP4, "image/png") == "video"
    assert kind_words(None, "video/mp4") == "video"
    assert kind_words(None, None, "voice") == "voice message"
    assert kind_words(b"PK\x03\x04zip", None) == "archive"
    assert is_blocked_kind("video/mp4", "document") and is_blocked_kind(None, "voice")
    assert not is_blocked_kind("image/jpeg", "image") and not is_blocked_kind(None, "document")


def test_the_fetch_failure_note_keeps_the_message_and_asks_again() -> None:
    words = not_fetched_words("image", "a.jpg", "WhatsApp", "no answer within 8 seconds.")
    assert words == (
        "Could not fetch the image (a.jpg) the customer sent from WhatsApp: no answer within 8 seconds. "
        "Ask them to send it again."
    )


@pytest.mark.parametrize(
    ("name", "content_type", "expected"),
    [
        ("../../etc/passwd", "application/pdf", "passwd.pdf"),
        ("C:\\Users\\me\\scan.PDF", "application/pdf", "scan.PDF"),
        ("invoice.exe", "application/pdf", "invoice.exe.pdf"),
        ("holiday.jpeg", "image/jpeg", "holiday.jpeg"),
        ('a"b<c>.png', "image/png", "a_b_c.png"),
        ("evil\u202egnp.exe", "image/png", "evil_gnp.exe.png"),
        ("   ", "image/png", "image.png"),
        (None, "application/pdf", "document.pdf"),
        (".hidden.gif", "image/gif", "hidden.gif"),
        ("line\r\nbreak.png", "image/png", "line_break.png"),
    ],
)
def test_file_names_are_made_safe(name: str | None, content_type: str, expected: str) -> None:
    assert sanitise_filename(name, content_type) == expected


@given(st.text(max_size=400), st.sampled_from(["image/png", "image/jpeg", "application/pdf"]))
def test_any_name_becomes_short_safe_and_ends_in_its_type(name: str, content_type: str) -> None:
    safe = sanitise_filename(name, content_type)
    assert 0 < len(safe) <= 120
    assert not any(ch in safe for ch in '/\\"<>\r\n\x00;')
    assert safe.lower().endswith((".png", ".jpg", ".jpeg", ".pdf"))


def test_sizes_in_words() -> None:
    assert size_words(10 * 1024 * 1024) == "10 MB"
    assert size_words(int(2.5 * 1024 * 1024)) == "2.5 MB"
    assert size_words(2048) == "2 KB"
    assert size_words(312) == "312 bytes"
