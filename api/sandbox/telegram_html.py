"""Telegram's HTML parse mode: the plain text and entities Telegram makes of a bot's HTML, or its refusal."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

#: Tag -> entity type, as listed under "HTML style" in the Bot API's formatting options.
ENTITY_OF_TAG = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",  # only as <span class="tg-spoiler">
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
}

Entity = dict[str, Any]


class EntityParseError(ValueError):
    """HTML Telegram refuses; the text is what follows "Bad Request: can't parse entities: "."""


def utf16_length(text: str) -> int:
    """Telegram counts entity offsets and lengths in UTF-16 code units (an emoji is often two)."""
    return len(text.encode("utf-16-le")) // 2


class _TelegramHtml(HTMLParser):
    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        self.pieces: list[str] = []
        self.length = 0
        self.open: list[tuple[str, Entity | None]] = []
        self.entities: list[Entity] = []
        self.line_starts = [0]
        for index, character in enumerate(source):
            if character == "\n":
                self.line_starts.append(index + 1)

    def byte_offset(self) -> int:
        line, column = self.getpos()
        return len(self.source[: self.line_starts[line - 1] + column].encode())

    def handle_data(self, data: str) -> None:
        self.pieces.append(data)
        self.length += utf16_length(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        kind = ENTITY_OF_TAG.get(tag)
        if kind is None or (tag == "span" and attributes.get("class") != "tg-spoiler"):
            raise EntityParseError(f'Unsupported start tag "{tag}" at byte offset {self.byte_offset()}')
        entity: Entity | None = {"type": kind, "offset": self.length}
        if tag == "a":
            href = attributes.get("href") or ""
            # Telegram keeps the text and drops a link without an address.
            entity = {"type": kind, "offset": self.length, "url": href} if href else None
        if tag == "code" and self.open and self.open[-1][0] == "pre":
            # <pre><code class="language-python"> is one pre entity with a language.
            pre = self.open[-1][1]
            language = (attributes.get("class") or "").removeprefix("language-")
            if pre is not None and language:
                pre["language"] = language
            entity = None
        self.open.append((tag, entity))

    def handle_endtag(self, tag: str) -> None:
        if not self.open:
            raise EntityParseError(f"Unexpected end tag at byte offset {self.byte_offset()}")
        opened, entity = self.open.pop()
        if opened != tag:
            raise EntityParseError(
                f'Unmatched end tag at byte offset {self.byte_offset()}, expected "</{opened}>", found "</{tag}>"'
            )
        if entity is not None:
            entity["length"] = self.length - entity["offset"]
            self.entities.append(entity)

    def result(self) -> tuple[str, list[Entity]]:
        if self.open:
            raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{self.open[-1][0]}"')
        return "".join(self.pieces), self.entities


def parse_html(source: str) -> tuple[str, list[Entity]]:
    """The text Telegram shows and its entities, trimmed of surrounding white space as Telegram does."""
    reader = _TelegramHtml(source)
    reader.feed(source)
    reader.close()
    text, entities = reader.result()
    return _trimmed(text, entities)


def plain(source: str) -> tuple[str, list[Entity]]:
    return _trimmed(source, [])


def _trimmed(text: str, entities: list[Entity]) -> tuple[str, list[Entity]]:
    cut = utf16_length(text) - utf16_length(text.lstrip())
    trimmed = text.strip()
    end = utf16_length(trimmed)
    kept = []
    for entity in entities:
        start = max(0, entity["offset"] - cut)
        stop = min(end, entity["offset"] - cut + entity["length"])
        if stop > start:
            kept.append({**entity, "offset": start, "length": stop - start})
    kept.sort(key=lambda entity: (entity["offset"], -entity["length"]))
    return trimmed, kept


def formatted(params: dict[str, Any], field: str) -> tuple[str, list[Entity]]:
    """`text` or `caption` as Telegram stores it, read with the request's parse_mode."""
    source = str(params.get(field, "") or "")
    if str(params.get("parse_mode", "")).lower() == "html":
        return parse_html(source)
    return plain(source)
