"""A new installation's first admin, and staff after it, from the command line on both engines."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from storage.database import Database
from storage.models import AuditLog, ClinicianHours, StaffUser
from switchboard.cli import main as cli
from tests.conftest import FreshDatabases


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_the_first_admin_signs_in_on_a_fresh_database_and_every_change_is_audited(
    engine: str, fresh_databases: FreshDatabases, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = fresh_databases.url(engine)
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", url)
    runner = CliRunner()

    empty = runner.invoke(cli, ["staff", "list"])
    assert empty.exit_code == 0 and "no staff yet" in empty.output
    missing = runner.invoke(cli, ["login-link", "dana@clinic.example"])
    assert missing.exit_code == 2 and "no active staff member" in missing.output

    added = runner.invoke(
        cli, ["staff", "add", " Dana@Clinic.example ", "--name", "Dana  Weber", "--role", "admin"]
    )
    assert added.exit_code == 0, added.output
    assert added.output.startswith("added Dana Weber <dana@clinic.example> as admin")
    link = runner.invoke(cli, ["login-link", "dana@clinic.example"])
    assert link.exit_code == 0 and "/login/" in link.output, link.output

    again = runner.invoke(
        cli, ["staff", "add", "dana@clinic.example", "--name", "Dana Weber", "--role", "manager"]
    )
    assert again.exit_code == 0 and again.output.startswith(
        "updated Dana Weber <dana@clinic.example> as manager"
    )
    listed = runner.invoke(cli, ["staff", "list"])
    assert listed.output.strip() == "dana@clinic.example  Dana Weber  manager  no clinic  no bot linked"

    for bad, why in (
        (["not-an-email", "--name", "X"], "is not an email address"),
        (["a@b.example", "--name", " "], "--name"),
    ):
        refused = runner.invoke(cli, ["staff", "add", *bad])
        assert refused.exit_code == 2 and why in refused.output and "Traceback" not in refused.output
    wrong_role = runner.invoke(cli, ["staff", "add", "a@b.example", "--name", "A", "--role", "owner"])
    assert wrong_role.exit_code == 2 and "'owner' is not one of" in wrong_role.output

    async def stored() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        database = Database.connect(url)
        try:
            async with database.read_sessions() as session:
                staff = (await session.execute(select(StaffUser.email, StaffUser.role))).all()
                audit = (
                    await session.execute(select(AuditLog.action, AuditLog.via).order_by(AuditLog.id))
                ).all()
        finally:
            await database.dispose()
        return [tuple(r) for r in staff], [tuple(r) for r in audit]

    staff, audit = asyncio.run(stored())
    assert staff == [("dana@clinic.example", "manager")]
    assert audit == [("staff.add", "cli"), ("staff.update", "cli")]


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_an_admin_links_staff_to_the_bots_and_removes_someone_who_left(
    engine: str, fresh_databases: FreshDatabases, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walk found no way to link a Slack or Telegram account or remove a staff member
    without SQL, while the bot told unlinked people to "ask an administrator to link" them."""
    url = fresh_databases.url(engine)
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", url)
    runner = CliRunner()
    for email, role in (("dana@clinic.example", "admin"), ("lena@clinic.example", "agent")):
        assert (
            runner.invoke(cli, ["staff", "add", email, "--name", email[:4].title(), "--role", role]).exit_code
            == 0
        )

    linked = runner.invoke(
        cli,
        [
            "staff",
            "link",
            "lena@clinic.example",
            "--slack",
            "U0LENA1",
            "--telegram",
            "4242",
        ],
    )
    assert linked.exit_code == 0, linked.output
    assert linked.output.strip() == "Lena <lena@clinic.example>: Slack U0LENA1, Telegram 4242"
    listed = runner.invoke(cli, ["staff", "list"]).output
    assert "lena@clinic.example  Lena  agent  no clinic  Slack U0LENA1, Telegram 4242" in listed

    for args, why in (
        (
            ["dana@clinic.example", "--telegram", "4242"],
            "Telegram user 4242 is linked to lena@clinic.example already",
        ),
        (["dana@clinic.example", "--slack", "lena"], "is no Slack member id"),
        (["nobody@clinic.example", "--slack", "U0X1"], "there is no staff member nobody@clinic.example"),
        (["dana@clinic.example"], "say what to link"),
    ):
        refused = runner.invoke(cli, ["staff", "link", *args])
        assert refused.exit_code == 2 and why in refused.output and "Traceback" not in refused.output, (
            refused.output
        )

    last_admin = runner.invoke(cli, ["staff", "remove", "dana@clinic.example"])
    assert last_admin.exit_code == 2 and "the last admin" in last_admin.output
    removed = runner.invoke(cli, ["staff", "remove", "lena@clinic.example"])
    assert removed.exit_code == 0 and "can no longer sign in or use the bots" in removed.output
    assert "(deactivated: cannot sign in)" in runner.invoke(cli, ["staff", "list"]).output
    refused_link = runner.invoke(cli, ["login-link", "lena@clinic.example"])
    assert refused_link.exit_code == 2

    async def identity() -> object:
        from storage.queries.staff import staff_by_email

        database = Database.connect(url)
        try:
            return await staff_by_email(database, "lena@clinic.example")
        finally:
            await database.dispose()

    assert asyncio.run(identity()) is None  # the bots and the dashboard no longer know her
    # Brought back as she was: her name and role kept when left out (the walk saw a manager come back an agent).
    back = runner.invoke(cli, ["staff", "add", "lena@clinic.example"])
    assert back.exit_code == 0 and back.output.startswith("updated Lena <lena@clinic.example> as agent")
    assert asyncio.run(identity()) is not None
    nameless = runner.invoke(cli, ["staff", "add", "new@clinic.example"])
    assert nameless.exit_code == 2 and "--name" in nameless.output


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_an_admin_sets_a_clinician_s_working_hours_and_the_front_desk_sees_who_is_on_duty(
    engine: str, fresh_databases: FreshDatabases, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Working hours make the free video times, and there was no way to set them but SQL."""
    url = fresh_databases.url(engine)
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", url)
    runner = CliRunner()
    for email, name, role in (
        ("dana@clinic.example", "Dana Weber", "admin"),
        ("lena@clinic.example", "Lena Hoffmann", "agent"),
    ):
        assert runner.invoke(cli, ["staff", "add", email, "--name", name, "--role", role]).exit_code == 0

    # Someone new is in the business's time zone, in which their hours are then read.
    none = runner.invoke(cli, ["staff", "hours", "lena@clinic.example"])
    assert none.exit_code == 0 and "has no working hours: no video consultations can be booked" in none.output
    set_ = runner.invoke(
        cli, ["staff", "hours", "lena@clinic.example", "Mo-Do 8-12, 13:00-17:00; Fr 08:00-13:00"]
    )
    assert set_.exit_code == 0, set_.output
    assert (
        "Lena Hoffmann <lena@clinic.example> works Mon-Thu 08:00-12:00 13:00-17:00; Fri 08:00-13:00 "
        "(Europe/Berlin time)" in set_.output
    )
    empty = runner.invoke(cli, ["staff", "hours", "lena@clinic.example", " "])
    assert empty.exit_code == 2 and "or off to clear them" in empty.output, "an empty argument wipes nothing"
    london = runner.invoke(
        cli, ["staff", "add", "harry@clinic.example", "--name", "Harry Patel", "--timezone", "Europe/London"]
    )
    assert london.exit_code == 0
    moved = runner.invoke(
        cli, ["staff", "hours", "harry@clinic.example", "sat 9-13", "--timezone", "Mars/Base"]
    )
    assert moved.exit_code == 2 and "'Mars/Base' is not a time zone" in moved.output
    harry = runner.invoke(cli, ["staff", "hours", "harry@clinic.example", "sat 9-13"])
    assert "works Sat 09:00-13:00 (Europe/London time)" in harry.output
    assert runner.invoke(cli, ["staff", "hours", "harry@clinic.example", "off"]).exit_code == 0
    for bad, why in (
        ("mon 9-12 11-13", "on Mon, 09:00-12:00 and 11:00-13:00 overlap"),
        ("mon 17-9", "ends before it starts"),
        ("someday 9-10", "is not a day"),
        ("mon-fri", "gives days but no hours"),
    ):
        refused = runner.invoke(cli, ["staff", "hours", "lena@clinic.example", bad])
        assert refused.exit_code == 2 and why in refused.output and "Traceback" not in refused.output, bad
    unknown = runner.invoke(cli, ["staff", "hours", "nobody@clinic.example", "mon 9-10"])
    assert unknown.exit_code == 2 and "there is no staff member nobody@clinic.example" in unknown.output

    async def stored() -> tuple[list[tuple[int, str, str]], list[dict[str, str]]]:
        database = Database.connect(url)
        try:
            async with database.read_sessions() as session:
                hours = (
                    await session.execute(
                        select(ClinicianHours.weekday, ClinicianHours.starts, ClinicianHours.ends).order_by(
                            ClinicianHours.weekday, ClinicianHours.starts
                        )
                    )
                ).all()
                audited = list(
                    await session.scalars(select(AuditLog.detail).where(AuditLog.action == "staff.hours"))
                )
        finally:
            await database.dispose()
        return [(d, f"{a:%H:%M}", f"{b:%H:%M}") for d, a, b in hours], audited

    hours, audited = asyncio.run(stored())
    assert hours == [
        *[(day, span[0], span[1]) for day in range(4) for span in (("08:00", "12:00"), ("13:00", "17:00"))],
        (4, "08:00", "13:00"),
    ]
    assert [(a["before"], a["after"]) for a in audited if a["email"] == "lena@clinic.example"] == [
        ("none", "Mon-Thu 08:00-12:00 13:00-17:00; Fri 08:00-13:00")
    ]

    # The front desk asks the bot, in German, who works on Friday and on Saturday.
    friday = runner.invoke(
        cli, ["ask", "--as", "dana@clinic.example", "--out", str(tmp_path), "wer hat am Freitag Dienst?"]
    )
    assert friday.exit_code == 0, friday.output
    assert "1 person works on Friday (no clinic set for anyone)." in friday.output, "no clinic is counted"
    assert "Lena Hoffmann" in friday.output and "08:00–13:00" in friday.output
    saturday = runner.invoke(
        cli, ["ask", "--as", "dana@clinic.example", "--out", str(tmp_path), "team saturday"]
    )
    assert "Nobody has working hours on Saturday." in saturday.output and "switchboard staff hours" in (
        saturday.output
    )
    off = runner.invoke(cli, ["staff", "hours", "lena@clinic.example", "off"])
    assert off.exit_code == 0 and "has no working hours" in off.output
    assert asyncio.run(stored())[0] == []


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_an_admin_adds_clinics_and_puts_staff_in_them_for_the_roster(
    engine: str, fresh_databases: FreshDatabases, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A new installation had no way to make a clinic or put someone in one but SQL, so the roster said
    "no clinic set for anyone"."""
    url = fresh_databases.url(engine)
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", url)
    runner = CliRunner()
    assert "no clinics yet" in runner.invoke(cli, ["clinic", "list"]).output
    berlin = runner.invoke(cli, ["clinic", "add", "ber", "--name", "Berlin  Mitte"])
    assert berlin.exit_code == 0, berlin.output
    assert berlin.output.startswith("added clinic BER, Berlin Mitte (Europe/Berlin, DE)")
    london = runner.invoke(
        cli, ["clinic", "add", "LON", "--name", "London Soho", "--timezone", "Europe/London"]
    )
    assert "added clinic LON, London Soho (Europe/London, GB)" in london.output
    for bad, why in (
        (["B R", "--name", "X"], "is not a clinic code"),
        (["NEW"], "give the clinic's name"),
        (["HAM", "--name", "Hamburg", "--timezone", "Hamburg"], "is not a time zone"),
        (["HAM", "--name", "Hamburg", "--country", "DEU"], "is not a country code"),
    ):
        refused = runner.invoke(cli, ["clinic", "add", *bad])
        assert refused.exit_code == 2 and why in refused.output and "Traceback" not in refused.output, bad
    renamed = runner.invoke(cli, ["clinic", "add", "BER", "--name", "Berlin-Mitte"])
    assert renamed.output.startswith("updated clinic BER, Berlin-Mitte (Europe/Berlin, DE)")

    added = runner.invoke(
        cli, ["staff", "add", "harry@clinic.example", "--name", "Harry Patel", "--clinic", "london soho"]
    )
    assert added.exit_code == 0, added.output
    assert added.output.startswith(
        "added Harry Patel <harry@clinic.example> as agent at London Soho in Europe/London: their working hours"
    ), "someone new takes their clinic's zone"
    lena = runner.invoke(
        cli,
        [
            "staff",
            "add",
            "lena@clinic.example",
            "--name",
            "Lena Hoffmann",
            "--role",
            "admin",
            "--clinic",
            "BER",
        ],
    )
    assert "as admin at Berlin-Mitte in Europe/Berlin" in lena.output
    nowhere = runner.invoke(cli, ["staff", "add", "lena@clinic.example", "--clinic", "Atlantis"])
    assert nowhere.exit_code == 2
    assert (
        "there is no clinic 'Atlantis'; the clinics are: BER (Berlin-Mitte), LON (London Soho)"
        in nowhere.output
    )
    listed = runner.invoke(cli, ["clinic", "list"]).output.splitlines()
    assert listed == [
        "BER  Berlin-Mitte  Europe/Berlin  DE  1 staff member",
        "LON  London Soho  Europe/London  GB  1 staff member",
    ]
    assert "lena@clinic.example  Lena Hoffmann  admin  Berlin-Mitte  no bot linked" in (
        runner.invoke(cli, ["staff", "list"]).output
    )

    for email in ("harry@clinic.example", "lena@clinic.example"):
        assert runner.invoke(cli, ["staff", "hours", email, "Mo-Fr 9-17"]).exit_code == 0
    roster = runner.invoke(
        cli, ["ask", "--as", "lena@clinic.example", "--out", str(tmp_path), "who is on duty on friday?"]
    )
    assert roster.exit_code == 0, roster.output
    assert "2 people work on Friday at 2 clinics." in roster.output, roster.output
    assert roster.output.index("Berlin-Mitte") < roster.output.index("Lena Hoffmann")
    assert roster.output.index("London Soho") < roster.output.index("Harry Patel")

    # Out of a clinic again: "" takes them out, and the roster says so.
    out = runner.invoke(cli, ["staff", "add", "harry@clinic.example", "--clinic", ""])
    assert out.exit_code == 0 and "as agent at no clinic;" in out.output, out.output
    assert (
        "LON  London Soho  Europe/London  GB  0 staff members"
        in runner.invoke(cli, ["clinic", "list"]).output
    )

    async def audited() -> list[str]:
        database = Database.connect(url)
        try:
            async with database.read_sessions() as session:
                return list(await session.scalars(select(AuditLog.action).order_by(AuditLog.id)))
        finally:
            await database.dispose()

    assert asyncio.run(audited())[:3] == ["clinic.add", "clinic.add", "clinic.update"]
