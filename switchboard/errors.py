"""Turns start-up failures (bad URL, unreachable or unmigrated database) into one clear line."""

from __future__ import annotations

import socket

from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError


class StartupError(RuntimeError):
    """A problem the operator must fix before Switchboard can run; shown as one line, exit code 2."""


def explain_database_error(error: BaseException, url: str) -> StartupError:
    shown = redact_url(url)
    if isinstance(error, ArgumentError | ValueError):
        return StartupError(f"SWITCHBOARD_DATABASE_URL is not a valid database URL ({shown}): {error}")
    if isinstance(error, OSError | socket.gaierror | OperationalError | DBAPIError | TimeoutError):
        reason = str(getattr(error, "orig", None) or error).splitlines()[0]
        return StartupError(f"cannot reach the database at {shown}: {reason}")
    return StartupError(f"database problem at {shown}: {error.__class__.__name__}: {error}")


def redact_url(url: str) -> str:
    """The URL with any password replaced, safe to print."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # a URL too broken to parse: show only its scheme
        return url.split("://", 1)[0] + "://..."
