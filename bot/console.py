"""The console front end: run staff commands from a terminal through the same layer as Slack and Telegram."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.commands.context import CommandContext
from bot.commands.dispatch import handle
from bot.replies import Attachment, Image, Reply
from domain.staff import StaffIdentity
from storage.queries.staff import first_admin, staff_by_email

HISTORY_FILE = Path("~/.switchboard_history").expanduser()


class UnknownStaff(LookupError):
    """No active staff member has the email the console was asked to act as."""


async def console_identity(ctx: CommandContext, email: str | None) -> StaffIdentity:
    """The staff member with `email`, or the first admin when none is given."""
    who = await (
        staff_by_email(ctx.database, email, via="cli") if email else first_admin(ctx.database, via="cli")
    )
    if who is None:
        wanted = f"with email {email}" if email else "with the admin role"
        raise UnknownStaff(
            f"there is no active staff member {wanted}; add one with "
            "`switchboard staff add EMAIL --name NAME --role admin` (or, on a demo database, `switchboard seed`)"
        )
    return who


async def ask(ctx: CommandContext, text: str, *, as_email: str | None = None) -> Reply:
    """One command as the staff member with `as_email` (default: the first admin)."""
    return await handle(text, await console_identity(ctx, as_email), ctx)


def render_reply(reply: Reply) -> str:
    """The reply as plain text: title, text, fields, table, images/attachments and buttons."""
    lines: list[str] = []
    if reply.title:
        lines += [reply.title, "=" * len(reply.title)]
    marks = [m for m, on in (("private", reply.private), ("needs confirmation", reply.confirm)) if on]
    if reply.kind != "answer":
        marks.insert(0, reply.kind)
    if marks:
        lines.append(f"({', '.join(marks)})")
    lines.append(reply.text)
    if reply.fields:
        width = max(len(f.label) for f in reply.fields)
        lines += [f"  {f.label.ljust(width)}  {f.value}" for f in reply.fields]
    if reply.table is not None:
        lines.append(_table(reply.table.columns, reply.table.rows))
    lines += [f"  [image] {i.filename} ({len(i.content):,} bytes): {i.alt_text}" for i in reply.images]
    lines += [f"  [attachment] {a.filename} ({len(a.content):,} bytes)" for a in reply.attachments]
    lines += [f"  [{b.label}] → {b.command}" for b in reply.buttons]
    return "\n".join(lines)


def _table(columns: tuple[str, ...], rows: tuple[tuple[str, ...], ...]) -> str:
    widths = [
        max(len(str(c)), *(len(str(r[i])) for r in rows)) if rows else len(c) for i, c in enumerate(columns)
    ]

    def line(cells: tuple[str, ...]) -> str:
        return "  " + "  ".join(str(cell).ljust(w) for cell, w in zip(cells, widths, strict=False))

    return "\n".join([line(columns), "  " + "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


def save_files(reply: Reply, out_dir: Path) -> list[Path]:
    """Write the reply's images and attachments to `out_dir`; the paths written. A name already there gets a
    number ("revenue-2.png"), so the chart of an earlier question is kept, not overwritten."""
    if not reply.images and not reply.attachments:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    items: list[Image | Attachment] = [*reply.images, *reply.attachments]
    for item in items:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", item.filename) or "file"
        path = _unused(out_dir / safe)
        path.write_bytes(item.content)
        written.append(path)
    return written


def _unused(path: Path) -> Path:
    number = 1
    while True:
        try:
            path.open("xb").close()  # claimed, so two consoles writing at once never share a name
            return path
        except FileExistsError:
            number += 1
            stem = path.stem.rsplit("-", 1)[0] if number > 2 else path.stem
            path = path.with_name(f"{stem}-{number}{path.suffix}")


async def run_console(
    ctx: CommandContext,
    *,
    as_email: str | None,
    out_dir: Path,
    read_line: Callable[[str], str] = input,
    write: Callable[[str], Any] = print,
) -> None:
    """An interactive prompt with readline history; `exit` (or Ctrl-D) leaves."""
    who = await console_identity(ctx, as_email)
    readline = _readline()
    write(
        f"Switchboard console as {who.name} <{who.email}> ({who.role.value}). `help` lists commands, `exit` leaves."
    )
    try:
        while True:
            try:
                text = read_line("switchboard> ").strip()
            except (EOFError, KeyboardInterrupt):
                write("")
                break
            if text.lower() in ("exit", "quit", ":q"):
                break
            if not text:
                continue
            reply = await handle(text, who, ctx)
            write(render_reply(reply))
            for path in save_files(reply, out_dir):
                write(f"  saved {path}")
    finally:
        if readline is not None:
            try:
                readline.write_history_file(str(HISTORY_FILE))
            except OSError:
                pass  # a read-only home must not break the console


def _readline() -> Any:
    try:
        import readline
    except ImportError:  # Windows without pyreadline
        return None
    if HISTORY_FILE.exists() and os.access(HISTORY_FILE, os.R_OK):
        try:
            readline.read_history_file(str(HISTORY_FILE))
        except OSError:
            pass
    readline.set_history_length(1000)
    return readline


def stamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")
