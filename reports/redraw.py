"""Redrawing a report by another split, from buttons under it in Slack or Telegram.

`report run` in chat and every scheduled delivery to Slack or Telegram offer up to three "By …" buttons;
pressing one runs `report run SLUG by SPLIT` as the person who pressed it (with their role's rights), in
the conversation the report is in. Slack carries the command in the button's value (the bot's own action
id pattern); Telegram allows only 64 bytes of callback data and the worker that delivers does not share
the bot's memory of drawn buttons, so the button names the report and split in a small format the bot
reads back (`parse_redraw`), and the command is rebuilt from checked words only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reports.metrics import dimension_words, get_metric

#: How many "By …" buttons go under a report.
MAX_REDRAWS = 3
#: The Slack bot answers buttons whose action id is this prefix and a number (bot.slack.render.ACTION_PREFIX).
SLACK_ACTION_PREFIX = "sb_cmd_"
#: Telegram callback data of a redraw button: "sbr:SLUG:SPLIT", or "sbr:SLUG:SPLIT:DIMENSION=V1,V2" when the
#: delivery had its recipient's own filter (at most 64 bytes, or no button is drawn).
TELEGRAM_PREFIX = "sbr:"
TELEGRAM_DATA_LIMIT = 64
_WORD = re.compile(r"[a-z0-9][a-z0-9_-]{0,79}")
_VALUES = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}(?:,[A-Za-z0-9][A-Za-z0-9_.-]{0,63}){0,9}")


@dataclass(frozen=True)
class Redraw:
    label: str
    command: str
    slug: str
    split: str
    #: The recipient's own filter the delivery had ("location", ("BER",)), kept by the redraw.
    only: tuple[str, tuple[str, ...]] | None = None

    @property
    def telegram_data(self) -> str | None:
        """The button's callback data, or None when it would pass Telegram's 64 bytes (or cannot be written)."""
        data = f"{TELEGRAM_PREFIX}{self.slug}:{self.split}"
        if self.only is not None:
            dimension, values = self.only
            data += f":{dimension}={','.join(values)}"
            if not _WORD.fullmatch(dimension) or not _VALUES.fullmatch(",".join(values)):
                return None
        return data if len(data.encode()) <= TELEGRAM_DATA_LIMIT else None


def redraws(
    slug: str, definition: Mapping[str, Any], only: Sequence[Mapping[str, Any]] = ()
) -> tuple[Redraw, ...]:
    """The splits the report's metric allows that it is not already split by (at most three). `only` is the
    recipient's own filter a scheduled delivery added (one "is one of" filter): the redraw keeps it."""
    query = definition.get("query") or {}
    metrics = query.get("metrics") or []
    if not metrics:
        return ()
    try:
        metric = get_metric(str(metrics[0]))
    except (KeyError, ValueError):
        return ()
    kept: tuple[str, tuple[str, ...]] | None = None
    said = ""
    if only:
        item = only[0]
        values = item.get("value")
        kept = (
            str(item.get("dimension", "")),
            tuple(str(v) for v in (values if isinstance(values, list) else [values])),
        )
        # The dimension keeps its underscore: "only source channel phone" would read as dimension "source".
        said = f" only {kept[0]} {','.join(kept[1])}"
    shown = set(query.get("dimensions") or [])
    splits = [d for d in metric.dimensions if d not in shown][:MAX_REDRAWS]
    return tuple(
        Redraw(f"By {dimension_words(d)}", f"report run {slug} by {d.replace('_', ' ')}{said}", slug, d, kept)
        for d in splits
    )


def parse_redraw(data: str | None) -> str | None:
    """The command a Telegram redraw button stands for, or None if the data is not one (or not well formed)."""
    if not data or not data.startswith(TELEGRAM_PREFIX):
        return None
    slug, _, rest = data[len(TELEGRAM_PREFIX) :].partition(":")
    split, _, only = rest.partition(":")
    if not _WORD.fullmatch(slug) or not _WORD.fullmatch(split):
        return None
    command = f"report run {slug} by {split.replace('_', ' ')}"
    if not only:
        return command
    dimension, equals, values = only.partition("=")
    if not equals or not _WORD.fullmatch(dimension) or not _VALUES.fullmatch(values):
        return None
    return f"{command} only {dimension} {values}"
