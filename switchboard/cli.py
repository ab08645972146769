"""The `switchboard` command line: migrate, seed, serve and the rest, each failing with one clear line."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click
from pydantic import ValidationError

from domain.clock import utc_now
from domain.counting import counted
from switchboard.errors import StartupError, explain_database_error, redact_url
from switchboard.logs import TEXT_FORMAT, use_log_format, use_log_level
from switchboard.settings import ConfigurationError, Settings

P = ParamSpec("P")
T = TypeVar("T")


#: `--env-file` was given: the settings come from it and the environment only, not also from a `.env` in
#: whatever folder the command happens to run in (the units run in /var/lib/switchboard).
_SETTINGS_FILE_GIVEN = False


def load_settings() -> Settings:
    try:
        settings = Settings(_env_file=None) if _SETTINGS_FILE_GIVEN else Settings()  # type: ignore[call-arg]
    except ValidationError as error:
        first = error.errors()[0]
        name = "SWITCHBOARD_" + str(first["loc"][0]).upper() if first["loc"] else "settings"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise StartupError(message if name == "settings" else f"{name}: {message}") from None
    use_log_format(settings.log_format)
    return settings


LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def warn_if_links_lead_nowhere(settings: Settings) -> None:
    """Bot answers and the messages they send carry links to the public URL. When it is this machine and no
    app answers there (a demo on another port, `make demo PORT=8600`, and a shell without its environment),
    say so before anything is sent with a dead link."""
    from urllib.error import HTTPError
    from urllib.parse import urlsplit
    from urllib.request import ProxyHandler, build_opener

    url = settings.public_url.rstrip("/")
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return
    if host not in LOOPBACK_HOSTS:
        return  # a real address; `switchboard doctor` checks that it answers
    # Straight to this machine, never through an http_proxy; a best-effort look that must not stop the command.
    opener = build_opener(ProxyHandler({}))
    try:
        with opener.open(f"{url}/healthz", timeout=1):
            answers = True
    except HTTPError:
        answers = True  # something answers there
    except Exception:  # refused, timed out, not HTTP at all (an SMTP banner), a malformed port
        answers = False
    if answers:
        return
    click.echo(
        f"Note: no app answers at {url} (SWITCHBOARD_PUBLIC_URL), yet links in answers and in the messages "
        "they send lead there. If the app runs on another port, set SWITCHBOARD_PUBLIC_URL to its address, "
        "e.g. SWITCHBOARD_PUBLIC_URL=http://127.0.0.1:8600 for `make demo PORT=8600`.",
        err=True,
    )


def one_line_errors(command: Callable[P, T]) -> Callable[P, T]:
    """Operators get one line and a non-zero exit for problems they must fix, never a traceback."""

    @wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return command(*args, **kwargs)
        except (StartupError, ConfigurationError) as error:
            click.echo(f"switchboard: error: {error}", err=True)
            sys.exit(2)

    return run


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def _needs_postgresql_itself(settings: Settings, command: str) -> None:
    """`migrate`, `backup` and `restore` hold a session (an advisory lock, pg_dump's snapshot and settings),
    which PgBouncer in transaction mode cannot keep."""
    if settings.database_transaction_pooling:
        raise StartupError(
            f"`switchboard {command}` needs PostgreSQL itself, not PgBouncer in transaction mode: run it with "
            "SWITCHBOARD_DATABASE_URL naming PostgreSQL's own host and port, and "
            "SWITCHBOARD_DATABASE_TRANSACTION_POOLING=false"
        )


async def _with_database(settings: Settings, action: Callable[..., Awaitable[T]]) -> T:
    from storage.database import Database

    _check_sqlite_folder(settings.database_url)
    try:
        database = Database.connect(
            settings.database_url,
            read_url=settings.database_read_url or None,
            transaction_pooling=settings.database_transaction_pooling,
        )
    except Exception as error:  # a URL SQLAlchemy cannot even parse
        raise explain_database_error(error, settings.database_url) from None
    try:
        try:
            await asyncio.wait_for(database.ping(), timeout=10)
        except Exception as error:  # unreachable, refused, unknown host, bad credentials
            raise explain_database_error(error, settings.database_url) from None
        return await action(database)
    finally:
        await database.dispose()


def _check_sqlite_folder(url: str) -> None:
    """SQLite creates its file but not the folder; say so plainly instead of failing inside the driver's thread."""
    from pathlib import Path

    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        folder = Path(parsed.database).expanduser().parent
        if not folder.is_dir():
            raise StartupError(
                f"cannot reach the database at {redact_url(url)}: the folder {folder} does not exist"
            )


async def require_migrated(database: Any) -> None:
    from storage import migrate

    current = await migrate.current_revision(database.engine)
    head = migrate.head_revision()
    if current != head and migrate.is_newer_than_this_release(current):
        # A newer release migrated it during a rolling upgrade: this one keeps running until replaced.
        logging.getLogger("switchboard").warning(
            "the database is at %s, newer than this release (%s): a newer release is being rolled out",
            current,
            head,
        )
        return
    if current != head:
        raise StartupError(
            f"the database is not migrated (at {current or 'no revision'}, head is {head}): run `switchboard migrate`"
        )


@click.group()
@click.option("--verbose", "-v", is_flag=True, help="Log debug detail.")
@click.option(
    "--env-file",
    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
    help="Read settings from this file as the systemd units and compose do (e.g. "
    "/etc/switchboard/switchboard.env); variables already set in the shell win.",
)
@click.pass_context
def main(context: click.Context, verbose: bool, env_file: Path | None) -> None:
    """Switchboard: talk with your customers on every channel and see how the business is doing."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format=TEXT_FORMAT)
    context.obj = {"verbose": verbose}
    if env_file is not None:
        read_env_file(env_file)


def read_env_file(path: Path) -> None:
    """KEY=VALUE lines (comments, quotes, values with spaces) into this process's environment, without `$`
    expansion, as systemd's EnvironmentFile= and compose's env_file read them; the shell's own values win."""
    from dotenv import dotenv_values

    global _SETTINGS_FILE_GIVEN
    for name, value in dotenv_values(path, interpolate=False).items():
        if value is not None:
            os.environ.setdefault(name, value)
    _SETTINGS_FILE_GIVEN = True


@main.command()
@click.option("--revision", default="head", show_default=True)
@one_line_errors
def migrate(revision: str) -> None:
    """Upgrade the database to the latest schema (creates it on SQLite)."""
    from reports.metrics import mirror_definitions
    from storage import migrate as migrations

    settings = load_settings()
    _needs_postgresql_itself(settings, "migrate")

    moved: list[str | None] = []

    async def upgrade(database: Any) -> None:
        try:
            async with migrations.migration_lock(settings.database_url):
                moved.append(await migrations.current_revision(database.engine))
                if revision == "head" and migrations.is_newer_than_this_release(moved[0]):
                    # A newer release already upgraded it (a rolling upgrade): nothing for this one to do.
                    moved.append(moved[0])
                    return
                await migrations.upgrade(settings.database_url, revision)
                moved.append(await migrations.current_revision(database.engine))
                if revision == "head":
                    await mirror_definitions(database)
        except migrations.MigrationLockBusy as busy:
            raise StartupError(str(busy)) from None

    run_async(_with_database(settings, upgrade))
    before, after = moved if len(moved) == 2 else (None, None)
    where = f"database at {redact_url(settings.database_url)}"
    at = f"{after} ({revision})" if revision == "head" else str(after)
    if before == after and migrations.is_newer_than_this_release(after):
        click.echo(
            f"{where} is at {after}, newer than this release (head {migrations.head_revision()}): nothing to "
            "upgrade; this release runs on it until it is replaced"
        )
    elif before == after:
        click.echo(f"{where} is at {at}: nothing to upgrade")
    elif before is None:
        click.echo(f"{where} is at {at}: its schema was created")
    else:
        click.echo(f"{where} is at {at}: upgraded from {before}")


@main.command()
@click.option("--customers", default=500, show_default=True, type=click.IntRange(1, 5_000_000))
@click.option("--days", default=90, show_default=True, type=click.IntRange(1, 3660))
@click.option("--seed", "seed_value", default=1, show_default=True, type=int)
@click.option(
    "--end-date",
    type=click.DateTime(["%Y-%m-%d"]),
    help="Last seeded day, UTC: a past day is seeded to its end; default today, up to now.",
)
@click.option("--force", is_flag=True, help="Replace existing data.")
@click.option(
    "--if-empty", is_flag=True, help="Do nothing (successfully) when the database already has data."
)
@one_line_errors
def seed(
    customers: int, days: int, seed_value: int, end_date: datetime | None, force: bool, if_empty: bool
) -> None:
    """Fill the database with realistic, deterministic demo data (a group of clinics)."""
    from storage.seeding import DatabaseNotEmpty, SeedPlan, seed_database

    settings = load_settings()
    now = utc_now()
    last_day = end_date.date() if end_date else now.date()
    if last_day > now.date():
        raise StartupError(f"--end-date {last_day} is in the future: demo history ends today at the latest")
    # Today is seeded up to this moment, never later; a past day is seeded to its end, the same every run.
    plan = SeedPlan(
        customers,
        days,
        seed_value,
        last_day,
        now=now if last_day == now.date() else None,
        business_tz=settings.business_timezone,
    )

    async def fill(database: Any) -> Any:
        await require_migrated(database)
        with _progress_bar(customers) as progress:
            try:
                return await seed_database(database, plan, progress=progress, force=force)
            except DatabaseNotEmpty:
                if if_empty:
                    return None
                raise StartupError("the database already has data: pass --force to replace it") from None

    summary = run_async(_with_database(settings, fill))
    if summary is None:
        click.echo("database already has data; not seeding")
        return
    total = sum(summary.counts.values())
    click.echo(f"seeded {total:,} rows: " + ", ".join(f"{k} {v:,}" for k, v in summary.counts.items() if v))


class _progress_bar:
    """A tqdm bar on a terminal, nothing when output is redirected."""

    def __init__(self, total: int, *, unit: str = "customers", desc: str = "seeding") -> None:
        self.total = total
        self.unit = unit
        self.desc = desc
        self.bar: Any = None

    def __enter__(self) -> Callable[[int, int], None]:
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, unit=self.unit, desc=self.desc, unit_scale=self.unit == "B")

        def update(done: int, total: int) -> None:
            if self.bar is not None:
                self.bar.total = total
                self.bar.n = done
                self.bar.refresh()

        return update

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", "processes", default=1, show_default=True, type=int, help="Web processes.")
@one_line_errors
def serve(host: str, port: int, processes: int) -> None:
    """Run the web app (dashboard, JSON API, webhooks), the provider sandbox when enabled, and a worker."""
    settings = load_settings()
    settings.check_production_ready()

    async def check(database: Any) -> None:
        await require_migrated(database)

    run_async(_with_database(settings, check))
    _require_free_port(host, port, "--port", processes=processes)
    if settings.sandbox:
        _require_free_port("127.0.0.1", settings.sandbox_port, "SWITCHBOARD_SANDBOX_PORT")
        _require_free_port("127.0.0.1", settings.sandbox_smtp_port, "SWITCHBOARD_SANDBOX_SMTP_PORT")
    sandbox_process = _start_sandbox_process() if settings.sandbox else None
    click.echo(f"Switchboard is running at http://{host}:{port}/  (health: /healthz)")
    if sandbox_process is not None:
        click.echo(
            f"Provider sandbox at http://127.0.0.1:{settings.sandbox_port}/_sandbox/  (reply as a customer there)"
        )
    try:
        _run_uvicorn(host, port, processes, settings.forwarded_allow_ips)
    finally:
        if sandbox_process is not None:
            sandbox_process.terminate()
            sandbox_process.wait(timeout=10)


def _require_free_port(host: str, port: int, setting: str, *, processes: int = 1) -> None:
    """Refuse to start on a port something else holds, before saying Switchboard is running there."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise StartupError(
            f"cannot listen on {host}: {error.strerror}; give an address such as 127.0.0.1"
        ) from None
    if processes > 1:  # uvicorn binds one socket itself then: IPv6 for an address with a colon, else IPv4
        wanted = socket.AF_INET6 if ":" in host else socket.AF_INET
        infos = [info for info in infos if info[0] == wanted][:1] or infos[:1]
    # Every address the host names ("localhost": ::1 and 127.0.0.1), each as the server binds it: with
    # SO_REUSEADDR, and an IPv6 socket for IPv6 only.
    for family, kind, proto, _, address in dict.fromkeys(infos):
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    raise StartupError(
                        f"port {port} on {host} is already in use (another Switchboard, or another "
                        f"program); stop it, or choose another port with {setting}"
                    ) from None
                raise StartupError(f"cannot listen on {host}:{port}: {error.strerror}") from None


def _start_sandbox_process() -> Any:
    import os
    import subprocess

    # The sandbox leaves with `serve`, even when `serve` is killed without a chance to clean up.
    env = {**os.environ, "SWITCHBOARD_SANDBOX_PARENT_PID": str(os.getpid())}
    return subprocess.Popen([sys.executable, "-m", "switchboard.cli", "sandbox"], env=env)


#: On SIGTERM, how long requests already read may take to finish; then open event streams (the inbox's and
#: the widget's, which reconnect) are closed and the app shuts down (the in-process worker drains its sends).
GRACEFUL_SHUTDOWN_SECONDS = 20


def _run_uvicorn(host: str, port: int, processes: int, forwarded_allow_ips: str) -> None:
    import uvicorn

    uvicorn.run(
        "switchboard.asgi:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=processes,
        log_level="warning",
        access_log=False,
        # Behind a reverse proxy, the client's address (the widget's and video links' pace per address)
        # comes from X-Forwarded-For, believed only from these proxies.
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


@main.command()
@click.option(
    "--concurrency",
    type=int,
    help="Provider calls in flight per channel (default SWITCHBOARD_WORKER_CONCURRENCY).",
)
@one_line_errors
def worker(concurrency: int | None) -> None:
    """Run a worker: delivers the outbox, plans campaigns, sends notifications and scheduled reports."""
    settings = load_settings()
    if concurrency:
        settings = settings.model_copy(update={"worker_concurrency": concurrency})
    settings.check_production_ready()
    if not click.get_current_context().find_root().params.get("verbose"):
        use_log_level(settings.log_level)

    async def work(_database: Any) -> None:
        await require_migrated(_database)
        await run_worker(settings)

    click.echo("delivery worker running; Ctrl-C to stop")
    run_async(_with_database(settings, work))


async def run_worker(settings: Settings) -> None:
    import signal

    from switchboard.background import BackgroundServices
    from switchboard.wiring import build_container

    container = build_container(settings)
    services = BackgroundServices(container, role="worker")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        metrics_server = _serve_worker_metrics(settings, container)
    except StartupError:
        await container.close()
        raise
    await services.start()
    try:
        await stop.wait()
    finally:
        await services.stop()
        await container.close()
        if metrics_server is not None:
            metrics_server.shutdown()


def _serve_worker_metrics(settings: Settings, container: Any) -> Any:
    """This worker's own provider-call counters and latencies for Prometheus, when an address is set."""
    if not settings.worker_metrics_address:
        return None
    from prometheus_client import start_http_server

    host, _, port = settings.worker_metrics_address.rpartition(":")
    try:
        server, _thread = start_http_server(int(port), addr=host, registry=container.metrics.process_registry)
    except OSError as error:
        raise StartupError(
            f"SWITCHBOARD_WORKER_METRICS_ADDRESS={settings.worker_metrics_address}: cannot listen there "
            f"({error.strerror or error}); give each worker a port of its own, or leave it empty"
        ) from None
    return server


@main.command()
@click.option("--port", type=int, help="HTTP port (default SWITCHBOARD_SANDBOX_PORT).")
@click.option("--smtp-port", type=int, help="SMTP port (default SWITCHBOARD_SANDBOX_SMTP_PORT).")
@click.option(
    "--failure-rate",
    default=0.03,
    show_default=True,
    type=click.FloatRange(0, 1),
    envvar="SWITCHBOARD_SANDBOX_FAILURE_RATE",
    help="The share of sends the sandbox fails at random, as real providers now and then do "
    "(SWITCHBOARD_SANDBOX_FAILURE_RATE; `make demo` passes it on).",
)
@click.option(
    "--chaos",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Fraction of sends answered with a fault: a quarter each 429, 500, 503 and a hanging request.",
)
@click.option("--hang-seconds", default=30.0, show_default=True, help="How long a hanging request hangs.")
@click.option(
    "--no-idempotency",
    is_flag=True,
    help="Take every send as new, as Twilio and Meta do: any duplicate Switchboard causes shows.",
)
@click.option("--seed", type=int, help="Seed the sandbox's randomness, to repeat a run exactly.")
@one_line_errors
def sandbox(
    port: int | None,
    smtp_port: int | None,
    failure_rate: float,
    chaos: float,
    hang_seconds: float,
    no_idempotency: bool,
    seed: int | None,
) -> None:
    """Run the provider sandbox: local Twilio, WhatsApp Cloud, Telegram Bot API and SMTP stand-ins."""
    from api.sandbox.config import ChaosConfig
    from switchboard.delivery import sandbox_config

    settings = load_settings()
    quarter = chaos / 4
    config = sandbox_config(
        settings,
        port=port or settings.sandbox_port,
        smtp_port=smtp_port or settings.sandbox_smtp_port,
        failure_rate=failure_rate,
        chaos=ChaosConfig(quarter, quarter, quarter, quarter, hang_seconds=hang_seconds),
        honour_idempotency_keys=not no_idempotency,
        seed=seed,
    )
    run_async(_serve_sandbox(config))


async def _serve_sandbox(config: Any) -> None:
    import os
    import signal

    from api.sandbox.server import run_sandbox

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    parent = os.environ.get("SWITCHBOARD_SANDBOX_PARENT_PID")

    async def stop_when_orphaned() -> None:
        while parent and os.getppid() == int(parent):  # noqa: ASYNC110 - a parent's death sends no event
            await asyncio.sleep(1)
        if parent:
            stop.set()

    watchdog = asyncio.create_task(stop_when_orphaned())
    try:
        async with run_sandbox(config) as running:
            click.echo(
                f"provider sandbox at {running.base_url}/_sandbox/  (SMTP on port {running.smtp_port})"
            )
            await stop.wait()
    except OSError as error:
        raise StartupError(f"the sandbox cannot listen on port {config.port}: {error.strerror}") from None
    finally:
        watchdog.cancel()


@main.command()
@click.argument("text")
@click.option("--as", "as_email", help="Email of the staff member to act as (default: the first admin).")
@click.option("--out", "out_dir", default="out", show_default=True, type=click.Path(file_okay=False))
@one_line_errors
def ask(text: str, as_email: str | None, out_dir: str) -> None:
    """Run one bot command, e.g. `switchboard ask "revenue last 30 days by channel"`."""
    from pathlib import Path

    from bot.commands.context import CommandContext
    from bot.console import UnknownStaff, render_reply, save_files
    from bot.console import ask as ask_bot

    settings = load_settings()
    warn_if_links_lead_nowhere(settings)

    async def run(database: Any) -> Any:
        await require_migrated(database)
        ctx = CommandContext(settings, database)
        try:
            return await ask_bot(ctx, text, as_email=as_email)
        except UnknownStaff as error:
            raise StartupError(str(error)) from None

    reply = run_async(_with_database(settings, run))
    click.echo(render_reply(reply))
    for path in save_files(reply, Path(out_dir)):
        click.echo(f"  saved {path}")


@main.command()
@click.option("--as", "as_email", help="Email of the staff member to act as (default: the first admin).")
@click.option("--out", "out_dir", default="out", show_default=True, type=click.Path(file_okay=False))
@one_line_errors
def console(as_email: str | None, out_dir: str) -> None:
    """An interactive prompt for bot commands (history in ~/.switchboard_history; `exit` leaves)."""
    from pathlib import Path

    from bot.commands.context import CommandContext
    from bot.console import UnknownStaff, run_console

    settings = load_settings()
    warn_if_links_lead_nowhere(settings)

    async def run(database: Any) -> None:
        await require_migrated(database)
        try:
            await run_console(CommandContext(settings, database), as_email=as_email, out_dir=Path(out_dir))
        except UnknownStaff as error:
            raise StartupError(str(error)) from None

    run_async(_with_database(settings, run))


@main.group()
def report() -> None:
    """Saved reports."""


@report.command("run")
@click.argument("name")
@click.option("--out", "out_dir", default="out", show_default=True, type=click.Path(file_okay=False))
@one_line_errors
def report_run(name: str, out_dir: str) -> None:
    """Run the saved report NAME (its slug): writes NAME.png and NAME.csv to --out and prints the summary."""
    from pathlib import Path

    from reports.library import report_by_slug
    from reports.saved import ReportDefinitionError, run_saved_report

    settings = load_settings()

    async def run(database: Any) -> Any:
        await require_migrated(database)
        saved = await report_by_slug(database, name)
        if saved is None:
            raise StartupError(f'there is no saved report {name!r} (see `switchboard ask "report list"`)')
        try:
            return saved, await run_saved_report(
                database,
                saved.name,
                saved.definition,
                now=utc_now(),
                business_tz=settings.business_timezone,
                locale=settings.business_locale,
                currency=settings.business_currency,
                business_name=settings.business_name,
            )
        except ReportDefinitionError as error:
            raise StartupError(f"report {name!r} cannot run: {error}") from None

    saved, output = run_async(_with_database(settings, run))
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{saved.slug}.png").write_bytes(output.png)
    (folder / f"{saved.slug}.csv").write_bytes(output.csv)
    click.echo(output.summary)
    click.echo(f"wrote {folder / (saved.slug + '.png')} and {folder / (saved.slug + '.csv')}")


@main.group()
def webhooks() -> None:
    """The webhook inbox."""


@webhooks.command("replay")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@one_line_errors
def webhooks_replay(limit: int) -> None:
    """Apply again the webhooks that were kept because they could not be processed."""
    from api.webhooks import replay_failed_webhooks
    from switchboard.wiring import build_container

    settings = load_settings()

    async def replay(database: Any) -> tuple[int, int]:
        await require_migrated(database)
        container = build_container(settings)
        try:
            result: tuple[int, int] = await replay_failed_webhooks(container, limit=limit)
            return result
        finally:
            await container.close()

    replayed, failing = run_async(_with_database(settings, replay))
    click.echo(f"replayed {replayed} webhooks; {failing} still failing")


@main.command()
@one_line_errors
def retention() -> None:
    """Apply the retention periods now (the workers do it every 10 minutes): forget applied webhooks past
    SWITCHBOARD_WEBHOOK_RETENTION_DAYS, blank message bodies past SWITCHBOARD_MESSAGE_BODY_RETENTION_DAYS and
    conversation texts past SWITCHBOARD_CONVERSATION_RETENTION_DAYS, drop whole months of messages past
    SWITCHBOARD_MESSAGE_RETENTION_MONTHS. Audited."""
    from storage.partitions import drop_old_messages
    from storage.retention import expire_conversation_texts, expire_message_bodies, forget_applied_webhooks

    settings = load_settings()

    async def apply(database: Any) -> list[str]:
        await require_migrated(database)
        now = utc_now()
        lines = []
        webhooks = await forget_applied_webhooks(database, settings.webhook_retention_days, now)
        lines.append(
            f"webhooks: deleted {webhooks.webhooks_deleted:,} applied before {webhooks.cutoff:%Y-%m-%d}"
            if webhooks.cutoff
            else "webhooks: kept (SWITCHBOARD_WEBHOOK_RETENTION_DAYS=0)"
        )
        bodies = await expire_message_bodies(database, settings.message_body_retention_days, now)
        more = "" if bodies.finished else " (more on the next pass)"
        lines.append(
            f"message bodies: blanked {bodies.blanked:,} created before {bodies.cutoff:%Y-%m-%d}{more}"
            if bodies.cutoff
            else "message bodies: kept (SWITCHBOARD_MESSAGE_BODY_RETENTION_DAYS=0)"
        )
        turns = await expire_conversation_texts(database, settings.conversation_retention_days, now)
        more = "" if turns.finished else " (more on the next pass)"
        lines.append(
            f"conversation texts: blanked {turns.blanked:,} turns and deleted {turns.files_deleted:,} files "
            f"written before {turns.cutoff:%Y-%m-%d}{more}"
            if turns.cutoff
            else "conversation texts: kept (SWITCHBOARD_CONVERSATION_RETENTION_DAYS=0)"
        )
        dropped = await drop_old_messages(
            database, settings.message_retention_months, now, business_tz=settings.business_timezone
        )
        lines.append(f"messages: {dropped.in_words()}")
        return lines

    for line in run_async(_with_database(settings, apply)):
        click.echo(line)


@main.group()
def rollups() -> None:
    """Analytics rollups."""


@rollups.command("rebuild")
@click.option(
    "--grain",
    "grains",
    multiple=True,
    default=("day", "week", "month"),
    show_default=True,
    type=click.Choice(["hour", "day", "week", "month", "quarter"]),
)
@one_line_errors
def rollups_rebuild(grains: tuple[str, ...]) -> None:
    """Rebuild every rollup from the raw facts (incremental updates keep them current afterwards)."""
    from reports.rollups import rebuild_rollups

    settings = load_settings()

    async def rebuild(database: Any) -> Any:
        await require_migrated(database)
        return await rebuild_rollups(database, grains=grains, business_tz=settings.business_timezone)  # type: ignore[arg-type]

    report = run_async(_with_database(settings, rebuild))
    click.echo(
        f"rollups rebuilt: {report.rows:,} rows in {report.buckets:,} buckets ({', '.join(report.grains)})"
    )


@main.group()
def analytics() -> None:
    """The daily communication figures."""


@analytics.command("verify")
@click.option("--repair", is_flag=True, help="Rewrite the figures from the recount when they differ.")
@one_line_errors
def analytics_verify(repair: bool) -> None:
    """Recount every message's daily figures (sent, delivered, read, failed, replied, cost) and each day's
    active customers from the orders, and report any drift."""
    from zoneinfo import ZoneInfo

    from storage.analytics.customer_days import CustomerDaysCheck, check_customer_days
    from storage.analytics.rollup_store import read_watermark
    from storage.message_feed import FeedCheck, check_message_feed

    settings = load_settings()

    async def verify(database: Any) -> tuple[FeedCheck, CustomerDaysCheck | None]:
        await require_migrated(database)
        feed = await check_message_feed(database, ZoneInfo(settings.business_timezone), repair=repair)
        async with database.read_sessions() as session:
            watermark = await read_watermark(session)
        if watermark is None or not watermark.customer_days:
            return feed, None
        return feed, await check_customer_days(database, watermark.timezone, repair=repair)

    check, days = run_async(_with_database(settings, verify))
    for drift in check.drift[:20]:
        channel, provider, campaign, template = drift.key
        where = f"{drift.day} {channel}/{provider}" + (f" campaign {campaign}" if campaign else "")
        where += f" template {template}" if template else ""
        click.echo(f"  {where}: {drift.figure} recorded {drift.recorded:,}, recounted {drift.recounted:,}")
    if len(check.drift) > 20:
        click.echo(f"  … and {len(check.drift) - 20:,} more")
    gone = (
        f" and the figures set aside for messages retention removed ({check.set_aside_rows:,} daily rows)"
        if check.set_aside_rows
        else ""
    )
    summary = (
        f"analytics: {check.rows:,} daily rows checked against a recount of the messages{gone}; "
        f"drift: {len(check.drift):,}"
    )
    click.echo(f"{summary}; repaired: the figures now equal the recount" if check.repaired else summary)
    if check.being_removed:
        click.echo(
            f"  retention is removing the messages of {', '.join(check.being_removed)}: their days read short "
            "until its next pass sets their figures aside"
            + ("; nothing was repaired, run it again after that pass" if repair else "")
        )
    if days is None:
        click.echo("active customers: not kept yet (the rollup job builds them on its next pass)")
    else:
        tz = ZoneInfo(settings.business_timezone)
        for day, kept, recounted in days.drift[:20]:
            click.echo(
                f"  {day.astimezone(tz):%Y-%m-%d}: active customers kept {kept:,}, recounted {recounted:,}"
            )
        if len(days.drift) > 20:
            click.echo(f"  … and {len(days.drift) - 20:,} more")
        summary = f"active customers: {days.days:,} days checked against a recount of the orders; drift: {len(days.drift):,}"
        click.echo(f"{summary}; repaired: the days now equal the recount" if days.repaired else summary)
    drifted = (check.drift and not check.repaired) or (days is not None and days.drift and not days.repaired)
    if drifted:
        sys.exit(1)


def _patient_data_files() -> None:
    """Files this command writes (a backup, an export, rows to fix) hold patients' data: readable by their
    owner only, whatever the shell's umask (pg_dump, a child process, inherits it). The umask is the
    process's: it is put back when the command ends (a test runs commands in its own process)."""
    before = os.umask(0o077)
    context = click.get_current_context(silent=True)
    if context is not None:
        context.call_on_close(lambda: os.umask(before))


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@one_line_errors
def backup(path: Path) -> None:
    """Back up the whole database to PATH, a new file (SQLite: online backup; PostgreSQL: pg_dump custom format).

    Safe while Switchboard runs: the copy is one consistent moment.
    """
    from storage.backups import BackupError, engine_of, sqlite_file
    from storage.backups import backup as make_backup

    _patient_data_files()
    settings = load_settings()
    _needs_postgresql_itself(settings, "backup")
    if engine_of(settings.database_url) == "sqlite" and not sqlite_file(settings.database_url).exists():
        raise StartupError(
            f"there is no database at {sqlite_file(settings.database_url)}: nothing to back up "
            "(is SWITCHBOARD_DATABASE_URL right?)"
        )

    async def run(database: Any) -> Any:
        # No migration check: a backup taken before `switchboard migrate` upgrades is the one to keep.
        try:
            return await make_backup(database, settings.database_url, path)
        except BackupError as error:
            raise StartupError(str(error)) from None

    report = run_async(_with_database(settings, run))
    click.echo(
        f"backed up {report.rows:,} rows in {report.tables} tables (schema {report.revision}) to {report.path} "
        f"({report.size_bytes / 1_000_000:,.1f} MB, {'SQLite' if report.engine == 'sqlite' else 'pg_dump custom format'})"
    )


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@one_line_errors
def restore(path: Path) -> None:
    """Restore the backup at PATH into the empty database SWITCHBOARD_DATABASE_URL names.

    Refuses a database that holds any row; stop the web and worker processes first.
    """
    from storage.backups import BackupError, drop_if_left_empty, sqlite_file_exists
    from storage.backups import restore as restore_backup

    settings = load_settings()
    _needs_postgresql_itself(settings, "restore")

    async def run(database: Any) -> Any:
        try:
            return await restore_backup(database, settings.database_url, path)
        except BackupError as error:
            raise StartupError(str(error)) from None

    there_before = sqlite_file_exists(settings.database_url)
    try:
        report = run_async(_with_database(settings, run))
    except StartupError:
        # Connecting to check the target made its SQLite file: a refused restore leaves no empty one behind.
        if not there_before:
            drop_if_left_empty(settings.database_url)
        raise
    click.echo(
        f"restored {report.rows:,} rows in {report.tables} tables from {path} into {redact_url(settings.database_url)}"
    )
    if report.needs_migrate and report.revision is not None and report.revision > report.head:
        click.echo(
            f"the backup's schema ({report.revision}) is newer than this version's ({report.head}): run the "
            "Switchboard version that made the backup, or a later one"
        )
    elif report.needs_migrate:
        click.echo(
            f"the backup's schema is at {report.revision or 'no revision'}, this version's is at {report.head}: "
            "run `switchboard migrate` before starting"
        )


@main.command()
@one_line_errors
def checksums() -> None:
    """Each table's rows and a SHA-256 of them in key order, one line per table, to compare a practice restore
    with its source (`diff` two outputs). Take the source's with the processes stopped, or expect the tables
    they write (heartbeats, performance figures, rollups) to differ."""
    from storage.backups import data_checksums

    settings = load_settings()

    async def run(database: Any) -> Any:
        await require_migrated(database)
        return await data_checksums(database)

    for table, (rows, digest) in run_async(_with_database(settings, run)).items():
        click.echo(f"{table}\t{rows}\t{digest}")


@main.command("slack-socket")
@one_line_errors
def slack_socket() -> None:
    """Connect to Slack over Socket Mode (for installs without a public URL); needs SWITCHBOARD_SLACK_APP_TOKEN."""
    from bot.command_runner import StaffCommandRunner
    from bot.slack.socket_mode import run_slack_socket_mode
    from switchboard.wiring import build_container

    settings = load_settings()
    if not settings.slack_app_token.get_secret_value():
        raise StartupError("SWITCHBOARD_SLACK_APP_TOKEN is not set (an xapp- token with connections:write)")

    async def run(_database: Any) -> None:
        container = build_container(settings)
        try:
            await run_slack_socket_mode(settings, StaffCommandRunner(container.command_context()))
        finally:
            await container.close()

    run_async(_with_database(settings, run))


@main.command("telegram-poll")
@one_line_errors
def telegram_poll() -> None:
    """Run the Telegram staff bot with long polling (local development; removes the bot's webhook)."""
    from bot.command_runner import StaffCommandRunner
    from bot.telegram_staff.staff_bot import run_staff_polling
    from switchboard.wiring import build_container

    settings = load_settings()

    async def run(_database: Any) -> None:
        container = build_container(settings)
        try:
            await run_staff_polling(settings, StaffCommandRunner(container.command_context()))
        finally:
            await container.close()

    run_async(_with_database(settings, run))


@main.command("login-link")
@click.argument("email")
@click.option("--minutes", default=15, show_default=True, type=click.IntRange(1, 24 * 60))
@one_line_errors
def login_link(email: str, minutes: int) -> None:
    """Print a one-time dashboard sign-in link for the staff member with EMAIL."""
    from api.auth import login_link as signed_link
    from storage.queries.staff import staff_by_email

    settings = load_settings()

    async def find(database: Any) -> Any:
        await require_migrated(database)
        return await staff_by_email(database, email)

    staff = run_async(_with_database(settings, find))
    if staff is None:
        raise StartupError(
            f"there is no active staff member with email {email} (removed, or never added): add them with "
            f"switchboard staff add {email} --name NAME"
        )
    click.echo(signed_link(settings.public_url, settings.session_secret, staff.staff_id, minutes, utc_now()))


@main.command()
@click.option(
    "--wait",
    "wait_seconds",
    type=click.FloatRange(min=1.0, max=300.0),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="How long each request to a provider may take before its check fails.",
)
@one_line_errors
def doctor(wait_seconds: float) -> None:
    """Check the database, the schema, every provider's credentials and webhooks, the public URL and the
    clock; one line each, with a fix for each failure. Exit code 1 when any check fails."""
    from switchboard.doctor import Doctor, report

    settings = load_settings()

    async def examine() -> Any:
        # Not _with_database: an unreachable database is one finding among the others, not the end.
        from storage.database import Database

        try:
            database = Database.connect(
                settings.database_url,
                read_url=settings.database_read_url or None,
                transaction_pooling=settings.database_transaction_pooling,
            )
        except Exception as error:  # a URL SQLAlchemy cannot even parse
            raise explain_database_error(error, settings.database_url) from None
        try:
            return await Doctor(settings, database, wait_seconds=wait_seconds).examine()
        finally:
            await database.dispose()

    findings = run_async(examine())
    click.echo(report(findings))
    if any(finding.outcome == "FAIL" for finding in findings):
        sys.exit(1)


@main.group("import")
def import_group() -> None:
    """Bring a business's existing data in."""


@import_group.command("customers")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check every row and say what would change; write nothing.")
@click.option(
    "--map",
    "mappings",
    multiple=True,
    metavar="COLUMN=FIELD",
    help="Read a column as a field, e.g. --map 'Mobil=phone' (fields: name, first_name, last_name, phone, "
    "email, external_ref, country, locale, timezone, segment, tags, preferred_channel, consent_sms, "
    "consent_whatsapp, consent_email, consent_telegram, consent_source, consent_at).",
)
@click.option(
    "--region", help="Country of numbers written without +code (default SWITCHBOARD_BUSINESS_COUNTRY)."
)
@click.option(
    "--encoding",
    default="utf-8-sig",
    show_default=True,
    help="The file's encoding (cp1252: Excel on Windows).",
)
@click.option(
    "--errors",
    "errors_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where rejected rows go (default FILE.errors.csv).",
)
@click.option(
    "--source", default="import", show_default=True, help="Consent source recorded when a row names none."
)
@one_line_errors
def import_customers(
    file: Path,
    dry_run: bool,
    mappings: tuple[str, ...],
    region: str | None,
    encoding: str,
    errors_path: Path | None,
    source: str,
) -> None:
    """Import customers from a CSV file: phone numbers to E.164, emails checked, duplicates merged by
    reference, phone or email, consent and preferences with their source and time, tags and segments.
    Rejected rows go to an error file with their reasons; importing the same file again changes nothing."""
    from storage.staff_accounts import operator
    from switchboard.customer_import import ImportOptions, ImportRefused
    from switchboard.customer_import import import_customers as run_import

    _patient_data_files()
    settings = load_settings()
    columns = {}
    for mapping in mappings:
        column, equals, field_name = mapping.partition("=")
        if not equals or not column.strip() or not field_name.strip():
            raise StartupError(f"--map {mapping!r}: write COLUMN=FIELD, e.g. --map 'Mobil=phone'")
        columns[column.strip()] = field_name.strip()
    country = (region or settings.phone_region).upper()
    if len(country) != 2 or not country.isalpha():
        raise StartupError(
            "which country's numbers lack a +code? give --region DE (or set SWITCHBOARD_BUSINESS_COUNTRY)"
        )
    options = ImportOptions(
        path=file,
        default_region=country,
        timezone=settings.business_timezone,
        locale=settings.customer_language,
        encoding=encoding,
        columns=columns,
        dry_run=dry_run,
        errors_path=errors_path,
        source=source,
        actor=operator(),
    )

    size = file.stat().st_size if file.is_file() else 0

    async def run(database: Any) -> Any:
        await require_migrated(database)
        with _progress_bar(size, unit="B", desc="importing") as update:
            try:
                return await run_import(database, options, update)
            except ImportRefused as refused:
                raise StartupError(str(refused)) from None

    result = run_async(_with_database(settings, run))
    click.echo(result.summary(marketing_requires_opt_in=settings.marketing_requires_opt_in))


@main.group()
def customer() -> None:
    """One customer's data: what a patient may ask to see."""


@customer.command("export")
@click.argument("customer_id", required=False, type=int)
@click.option("--email", help="Find the customer by email instead of id.")
@click.option("--phone", help="Find the customer by phone number (E.164, +49...) instead of id.")
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The ZIP to write (default customer-ID.zip); never overwritten.",
)
@one_line_errors
def customer_export(
    customer_id: int | None, email: str | None, phone: str | None, out_path: Path | None
) -> None:
    """Everything held about one customer (profile, consents, messages, conversations, appointments, orders) as
    a ZIP of JSON and CSV files, for a patient's request to see their data. Audited."""
    _patient_data_files()
    from storage.customer_export import (
        NoSuchCustomer,
        customer_bundle,
        find_customer,
        record_export,
        write_bundle,
    )
    from storage.staff_accounts import operator

    settings = load_settings()

    async def export(database: Any) -> Any:
        await require_migrated(database)
        try:
            found = await find_customer(
                database, customer_id=customer_id, email=email, phone=phone, region=settings.phone_region
            )
            bundle = await customer_bundle(database, found)
        except NoSuchCustomer as missing:
            raise StartupError(str(missing)) from None
        path = out_path or Path(f"customer-{found}.zip")
        if path.exists():
            raise StartupError(f"{path} already exists; name another file with --out")
        if not path.parent.is_dir():
            raise StartupError(f"there is no folder {path.parent} to write {path.name} in")
        write_bundle(bundle, path)
        await record_export(database, found, operator(), bundle.counts())
        return path, bundle

    path, bundle = run_async(_with_database(settings, export))
    held = ", ".join(_held(name, count) for name, count in bundle.counts().items() if count)
    click.echo(f"wrote everything held about customer {bundle.customer_id} to {path}: {held}")


#: Sections of a customer's bundle as counted in words, where "_" to " " and a dropped "s" will not do.
_SECTION_WORDS = {
    "customer": ("profile", "profiles"),
    "preferences": ("preferences", "preferences"),
    "consent_ledger": ("consent ledger entry", "consent ledger entries"),
    "current_consent": ("current consent", "current consents"),
    "message_status_history": ("message status change", "message status changes"),
    "business_events": ("business event", "business events"),
}


def _held(section: str, count: int) -> str:
    """ "3 messages", "1 tag", "2 consent ledger entries": a bundle section's count in words."""
    words = section.replace("_", " ")
    one, many = _SECTION_WORDS.get(section, (words[:-1] if words.endswith("s") else words, words))
    return counted(count, one, many)


@customer.command("erase")
@click.argument("customer_id", required=False, type=int)
@click.option("--email", help="Find the customer by email instead of id.")
@click.option("--phone", help="Find the customer by phone number (E.164, +49...) instead of id.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@one_line_errors
def customer_erase(customer_id: int | None, email: str | None, phone: str | None, yes: bool) -> None:
    """Erase one customer's personal data at their request: names, addresses, message and conversation text,
    files, tags and preferences, the copies of their conversations the bot posted in Slack threads and
    Telegram, and Twilio's records of their SMS. Orders, appointments, message counts and the consent ledger stay, so every figure stays the
    same. Planned messages are cancelled. Audited; cannot be undone (export first)."""
    from storage.customer_erasure import ErasureRefused, erase_customer
    from storage.customer_export import NoSuchCustomer, find_customer
    from storage.models import Customer
    from storage.staff_accounts import operator
    from switchboard.erasure_copies import erase_copies

    settings = load_settings()

    async def erase(database: Any) -> Any:
        await require_migrated(database)
        try:
            found = await find_customer(
                database, customer_id=customer_id, email=email, phone=phone, region=settings.phone_region
            )
            if not yes:
                async with database.read_sessions() as session:
                    who = await session.get(Customer, found)
                name = who.name if who is not None else f"customer {found}"
                if not click.confirm(
                    f"Erase the personal data of {name} (customer {found})? This cannot be undone",
                    default=False,
                ):
                    return "Nothing was erased."
            erasure = await erase_customer(database, found, actor=operator(), now=utc_now())
        except (NoSuchCustomer, ErasureRefused) as refused:
            raise StartupError(str(refused)) from None
        # The database is erased; now the copies in the staff chats and Twilio's logs (best effort, each
        # failure named and, for Twilio, kept for the next run).
        copies = await erase_copies(settings, database, erasure, actor=operator())
        return "\n".join([erasure.summary(), *copies.lines(found)])

    click.echo(run_async(_with_database(settings, erase)))


@main.group()
def staff() -> None:
    """Staff accounts: who may sign in to the dashboard and use the bots."""


@staff.command("add")
@click.argument("email")
@click.option("--name", help="The name colleagues and customers see (kept when left out for someone known).")
@click.option(
    "--role",
    type=click.Choice(["admin", "manager", "agent", "viewer"]),
    default=None,
    help="admin: everything; manager: campaigns, reports and settings; agent: chats; viewer: read only. "
    "Left out: agent for someone new, the role they had for someone known.",
)
@click.option(
    "--timezone",
    help="Their time zone (Europe/London), in which their working hours are read. Left out: the business's "
    "(SWITCHBOARD_BUSINESS_TIMEZONE) for someone new, theirs for someone known.",
)
@click.option(
    "--clinic",
    help='Their clinic, by code (BER) or name ("Berlin Mitte"); the roster lists them under it, and someone new '
    'takes its time zone. "" takes them out of theirs. Left out: theirs for someone known.',
)
@one_line_errors
def staff_add(
    email: str, name: str | None, role: str | None, timezone: str | None, clinic: str | None
) -> None:
    """Add a staff member (the first admin of a new installation, say), or change one's name and role."""
    from domain.vocabulary import Role
    from storage.staff_accounts import StaffAccountRefused, operator, save_staff

    settings = load_settings()

    async def save(database: Any) -> Any:
        await require_migrated(database)
        try:
            return await save_staff(
                database,
                email,
                name,
                Role(role) if role else None,
                actor=operator(),
                timezone=timezone,
                business_timezone=settings.business_timezone,
                clinic=clinic,
            )
        except StaffAccountRefused as refused:
            raise StartupError(str(refused)) from None

    saved = run_async(_with_database(settings, save))
    where = f" at {saved.clinic}" if saved.clinic and clinic else " at no clinic" if clinic == "" else ""
    zone = (
        f" in {saved.timezone}: their working hours are read in it now"
        if timezone or (saved.created and saved.clinic)
        else ""
    )
    click.echo(
        f"{'added' if saved.created else 'updated'} {saved.name} <{saved.email}> as {saved.role.value}{where}{zone}; "
        f"a sign-in link: switchboard login-link {saved.email}"
    )


@staff.command("list")
@one_line_errors
def staff_list() -> None:
    """Every staff account, with its role, and whether it may sign in."""
    from storage.staff_accounts import list_staff

    settings = load_settings()

    async def read(database: Any) -> Any:
        await require_migrated(database)
        return await list_staff(database)

    rows = run_async(_with_database(settings, read))
    if not rows:
        click.echo(
            "no staff yet: add the first admin with  switchboard staff add EMAIL --name NAME --role admin"
        )
    for row in rows:
        linked = [
            *([f"Slack {row.slack_user_id}"] if row.slack_user_id else []),
            *([f"Telegram {row.telegram_user_id}"] if row.telegram_user_id else []),
        ]
        click.echo(
            f"{row.email}  {row.name}  {row.role}  {row.clinic or 'no clinic'}  "
            f"{', '.join(linked) or 'no bot linked'}{'' if row.active else '  (deactivated: cannot sign in)'}"
        )


@staff.command("link")
@click.argument("email")
@click.option("--slack", "slack_user_id", help='Their Slack member id (U01ABCDEF); "" unlinks.')
@click.option(
    "--slack-team", "slack_team_id", help="The Slack workspace id (T01ABCDEF), when there are several."
)
@click.option(
    "--telegram", "telegram_user_id", type=int, help="Their Telegram user id (a number); 0 unlinks."
)
@one_line_errors
def staff_link(
    email: str,
    slack_user_id: str | None,
    slack_team_id: str | None,
    telegram_user_id: int | None,
) -> None:
    """Link a staff member's Slack or Telegram account, so the bots answer them with their role's rights (the
    bot's refusal to an unlinked person names their id)."""
    from storage.staff_accounts import StaffAccountRefused, link_staff, operator

    settings = load_settings()

    async def link(database: Any) -> str:
        await require_migrated(database)
        try:
            return await link_staff(
                database,
                email,
                slack_user_id=slack_user_id,
                slack_team_id=slack_team_id,
                telegram_user_id=telegram_user_id,
                actor=operator(),
            )
        except StaffAccountRefused as refused:
            raise StartupError(str(refused)) from None

    click.echo(run_async(_with_database(settings, link)))


@staff.command("hours")
@click.argument("email")
@click.argument("hours", required=False)
@click.option("--timezone", help="Read the hours in this time zone (Europe/London), which becomes theirs.")
@one_line_errors
def staff_hours(email: str, hours: str | None, timezone: str | None) -> None:
    """Show or set a clinician's working hours, in their own time zone; the free video consultation times are
    these less what is booked. HOURS like "mon-fri 09:00-12:30 13:30-17:00; sat 09:00-13:00" replaces them
    all; "off" clears them. Consultations already booked stay."""
    from domain.video.working_hours import WorkingHoursRefused, read_working_hours, working_hours_words
    from storage.staff_accounts import StaffAccountRefused, operator, set_working_hours, working_hours_of

    settings = load_settings()
    if hours is not None and not hours.strip():
        # An empty argument (an unset shell variable) must not wipe someone's hours: "off" says it.
        raise StartupError('give the hours, e.g. "mon-fri 09:00-17:00", or off to clear them')
    try:
        spans = None if hours is None else read_working_hours(hours)
    except WorkingHoursRefused as refused:
        raise StartupError(
            f'{refused}; e.g. "mon-fri 09:00-12:30 13:30-17:00; sat 09:00-13:00" or off'
        ) from None

    async def run(database: Any) -> Any:
        await require_migrated(database)
        try:
            if spans is None:
                if timezone is not None:
                    raise StartupError('give the hours to read in that time zone, e.g. "mon-fri 09:00-17:00"')
                return await working_hours_of(database, email)
            return await set_working_hours(database, email, spans, actor=operator(), timezone=timezone)
        except StaffAccountRefused as refused:
            raise StartupError(str(refused)) from None

    found = run_async(_with_database(settings, run))
    said = working_hours_words(found.spans)
    click.echo(
        f"{found.name} <{found.email}> works {said} ({found.timezone} time)"
        if found.spans
        else f"{found.name} <{found.email}> has no working hours: no video consultations can be booked with them"
    )
    if found.booked_ahead:
        click.echo(
            f"{found.booked_ahead} consultation{'s' if found.booked_ahead != 1 else ''} already booked with them "
            f'stay as they are: `switchboard ask "video list next week {found.email}"` lists them'
        )


@staff.command("remove")
@click.argument("email")
@one_line_errors
def staff_remove(email: str) -> None:
    """Someone who left: they can no longer sign in or use the bots, and their live conversations go back to
    the queue; their history keeps their name. `staff add` with their email brings them back."""
    from storage.staff_accounts import StaffAccountRefused, deactivate_staff, operator

    settings = load_settings()

    async def remove(database: Any) -> str:
        await require_migrated(database)
        try:
            return await deactivate_staff(database, email, actor=operator())
        except StaffAccountRefused as refused:
            raise StartupError(str(refused)) from None

    click.echo(run_async(_with_database(settings, remove)))


@main.group()
def clinic() -> None:
    """The business's clinics: the roster, reports and website chat keys name them."""


@clinic.command("add")
@click.argument("code")
@click.option("--name", help='The clinic\'s name ("Berlin Mitte"); kept when left out for a known code.')
@click.option(
    "--timezone",
    help="Its time zone (Europe/Berlin). Left out: the business's (SWITCHBOARD_BUSINESS_TIMEZONE) for a new "
    "clinic, its own for a known one.",
)
@click.option("--country", help="Its country, two letters (DE). Left out: its time zone's country.")
@one_line_errors
def clinic_add(code: str, name: str | None, timezone: str | None, country: str | None) -> None:
    """Add a clinic by its short code (BER), or change a known one's name, time zone or country."""
    from storage.clinics import save_clinic
    from storage.staff_accounts import StaffAccountRefused, operator
    from switchboard.settings import country_of_timezone

    settings = load_settings()

    async def save(database: Any) -> Any:
        await require_migrated(database)
        try:
            return await save_clinic(
                database,
                code,
                name=name,
                timezone=timezone,
                country=country,
                business_timezone=settings.business_timezone,
                default_country=country_of_timezone(timezone or settings.business_timezone),
                actor=operator(),
            )
        except StaffAccountRefused as refused:
            raise StartupError(str(refused)) from None

    saved = run_async(_with_database(settings, save))
    click.echo(
        f"{'added' if saved.created else 'updated'} clinic {saved.code}, {saved.name} ({saved.timezone}, "
        f"{saved.country}); put staff in it with  switchboard staff add EMAIL --clinic {saved.code}"
    )


@clinic.command("list")
@one_line_errors
def clinic_list() -> None:
    """Every clinic, with its time zone and how many staff belong to it."""
    from storage.clinics import list_clinics

    settings = load_settings()

    async def read(database: Any) -> Any:
        await require_migrated(database)
        return await list_clinics(database)

    rows = run_async(_with_database(settings, read))
    if not rows:
        click.echo("no clinics yet: add one with  switchboard clinic add CODE --name NAME")
    for row in rows:
        click.echo(
            f"{row.code}  {row.name}  {row.timezone}  {row.country}  "
            f"{row.staff} staff member{'' if row.staff == 1 else 's'}"
        )


@main.group("widget-key")
def widget_key() -> None:
    """Keys for the website chat widget, and the web pages (origins) each may be used on."""


@widget_key.command("create")
@click.option("--name", required=True, help="The website the key is for.")
@click.option("--origin", "origins", multiple=True, required=True, help="e.g. https://www.clinic.example")
@click.option(
    "--location", default=None, help="The clinic's code: its visitors belong to that clinic's team."
)
@one_line_errors
def widget_key_create(name: str, origins: tuple[str, ...], location: str | None) -> None:
    """Create a key; embed it as <script src="PUBLIC_URL/widget.js" data-key="KEY"></script>."""
    from domain.widget.model import WidgetRefused
    from domain.widget.use_cases import create_widget_key
    from storage.units import UnitsOfWork
    from storage.widget_visits import widget_unit

    settings = load_settings()

    async def create(database: Any) -> Any:
        await require_migrated(database)
        uow = widget_unit(UnitsOfWork(database, settings.business_timezone))
        return await create_widget_key(
            uow, name=name, origins=origins, actor="cli", via="cli", now=utc_now(), location=location
        )

    try:
        key = run_async(_with_database(settings, create))
    except WidgetRefused as error:
        raise StartupError(str(error)) from None
    click.echo(f"created widget key {key.key} for {key.name} ({', '.join(key.allowed_origins)})")
    click.echo(f'<script src="{settings.public_url.rstrip("/")}/widget.js" data-key="{key.key}"></script>')


@widget_key.command("list")
@one_line_errors
def widget_key_list() -> None:
    """Every widget key with its origins, and whether it is on."""
    from storage.queries.widget import widget_keys

    settings = load_settings()

    async def read(database: Any) -> Any:
        await require_migrated(database)
        return await widget_keys(database)

    for key in run_async(_with_database(settings, read)):
        state = "on" if key.enabled else "off"
        click.echo(f"{key.key}  {key.name}  [{state}]  {', '.join(key.allowed_origins) or 'no origins'}")


if __name__ == "__main__":
    main()
