"""THE command table: every staff command's name, parser, required role, handler and help, side by side."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, Generic, TypeVar

from bot.commands import (
    analyses,
    campaign_new,
    campaigns,
    canned,
    chats,
    customers,
    help,
    kpi,
    messages,
    no_shows,
    reports,
    rules,
    status,
    team,
    templates,
    video,
)
from bot.commands import sla as sla_commands
from bot.commands.context import CommandContext
from bot.commands.questions import KPI_USAGE
from bot.replies import Reply
from domain.staff import StaffIdentity
from domain.vocabulary import Role

#: The typed command a row's parser returns and its handler takes (one type per row).
C = TypeVar("C")


@dataclass(frozen=True)
class CommandSpec(Generic[C]):
    """One row of the table. `role_for` raises the role for some forms (e.g. `customer show --full`).

    Generic in the row's command type, so mypy checks that each row's parser, handler and `role_for`
    agree on what the command is.
    """

    name: str
    parse: Callable[[list[str], str, date], C]
    run: Callable[[C, StaffIdentity, CommandContext], Awaitable[Reply]]
    role: Role
    help: str
    usage: str
    examples: tuple[str, ...] = ()
    role_for: Callable[[C], Role] | None = None
    changes: bool = False  # whether it changes something (and so is audited)

    def required_role(self, command: C) -> Role:
        return self.role_for(command) if self.role_for is not None else self.role


V, A, M = Role.VIEWER, Role.AGENT, Role.MANAGER

# Built without a declared element type, so mypy infers each row's command type from its parser and
# checks the handler against it; the table then widens to CommandSpec[Any].
_ROWS = (
    CommandSpec(
        "help",
        help.parse_help,
        help.help_handler(lambda: COMMANDS),
        V,
        "List the commands, or explain one.",
        "help [COMMAND]",
        ("help", "help send"),
    ),
    CommandSpec(
        "kpi",
        kpi.parse_kpi,
        kpi.run_kpi,
        V,
        "A KPI as a chart and one sentence; plain questions work too.",
        KPI_USAGE,
        (
            "kpi revenue last 30 days by channel",
            "revenue this month vs last month",
            "show no-show rate for video consultations this quarter",
        ),
    ),
    CommandSpec(
        "sla",
        sla_commands.parse_sla,
        sla_commands.run_sla,
        V,
        "Live-chat SLA policies, and today's (or the week's) warnings and breaches by conversation.",
        sla_commands.USAGE,
        ("sla", "sla week"),
    ),
    CommandSpec(
        "retention",
        analyses.parse_retention,
        analyses.run_retention,
        V,
        "Retention by first-order cohort: the share of each month's new customers ordering again.",
        analyses.RETENTION_USAGE,
        ("retention by cohort", "retention by cohort this year"),
    ),
    CommandSpec(
        "attribution",
        analyses.parse_attribution,
        analyses.run_attribution,
        V,
        "Orders and revenue credited to the messages before them, per channel and campaign, against cost.",
        analyses.ATTRIBUTION_USAGE,
        ("attribution last quarter", "attribution last 30 days"),
    ),
    CommandSpec("report list", reports.parse_list, reports.run_list, V, "The saved reports.", "report list"),
    CommandSpec(
        "report save",
        reports.parse_save,
        reports.run_save,
        A,
        "Keep the question you were just answered as a saved report.",
        reports.SAVE_USAGE,
        ("report save Weekly revenue by clinic", "report save No-shows this quarter for everyone"),
        changes=True,
    ),
    CommandSpec(
        "report run",
        reports.parse_run,
        reports.run_report,
        V,
        "Run a saved report now, optionally for another period or split.",
        reports.RUN_USAGE,
        ("report run weekly-revenue", "report run weekly-revenue for last month by clinic"),
    ),
    CommandSpec(
        "report schedule",
        reports.parse_schedule,
        reports.run_schedule,
        M,
        "Deliver a saved report on a schedule to Slack, Telegram or email.",
        reports.SCHEDULE_USAGE,
        (
            "report schedule weekly-revenue every monday 8:00 to #management",
            "report schedule weekly-revenue every weekday 7:30 to me",
        ),
        changes=True,
    ),
    CommandSpec(
        "report unschedule",
        reports.parse_unschedule,
        reports.run_unschedule,
        M,
        "Stop a saved report's scheduled deliveries (all, or those to one destination).",
        reports.UNSCHEDULE_USAGE,
        ("report unschedule weekly-revenue", "report unschedule weekly-revenue to #management"),
        changes=True,
    ),
    CommandSpec(
        "send",
        messages.parse_send,
        messages.run_send,
        A,
        "Send one customer a message: shows a preview, sends on Confirm.",
        messages.USAGE,
        (
            "send sms to #12 template welcome clinic=Mitte",
            'send to jane@example.com text "Your results are in"',
        ),
        changes=True,
    ),
    CommandSpec(
        "cancel",
        messages.parse_cancel,
        messages.run_cancel,
        V,
        "Drop a pending confirmation (nothing is sent).",
        "cancel",
    ),
    CommandSpec(
        "template list",
        templates.parse_list,
        templates.run_list,
        V,
        "The active message templates.",
        "template list",
    ),
    CommandSpec(
        "template show",
        templates.parse_show,
        templates.run_show,
        V,
        "A template's variants, category and variables.",
        templates.SHOW_USAGE,
        ("template show welcome",),
    ),
    CommandSpec(
        "template preview",
        templates.parse_preview,
        templates.run_preview,
        V,
        "Render a template for a channel and locale, with SMS segments and cost.",
        templates.PREVIEW_USAGE,
        ("template preview welcome sms de first_name=Jana",),
    ),
    CommandSpec(
        "campaign new",
        campaign_new.parse_new,
        campaign_new.run_new,
        M,
        "Create a campaign in one line: shows who it reaches and the cost, saves a draft on confirm.",
        campaign_new.USAGE,
        (
            "campaign new December check-up template welcome with clinic=Mitte to segment:vip on sms then email",
            "campaign new Flu jabs template welcome with clinic=Mitte to country:DE on email at 2026-12-10 09:00",
        ),
        changes=True,
    ),
    CommandSpec(
        "campaign list",
        campaigns.parse_list,
        campaigns.run_list,
        V,
        "The campaigns and their state.",
        "campaign list",
    ),
    CommandSpec(
        "campaign preview",
        campaigns.action_parser("preview"),
        campaigns.run_preview,
        V,
        "Who a campaign would reach, who is excluded and why, and the cost.",
        "campaign preview SLUG",
    ),
    CommandSpec(
        "campaign status",
        campaigns.action_parser("status"),
        campaigns.run_status,
        V,
        "A campaign's progress by message status.",
        "campaign status SLUG",
    ),
    CommandSpec(
        "campaign launch",
        campaigns.action_parser("launch"),
        campaigns.run_launch,
        M,
        "Launch a campaign (asks to confirm recipients, exclusions and cost first).",
        "campaign launch SLUG",
        changes=True,
    ),
    CommandSpec(
        "campaign pause",
        campaigns.action_parser("pause"),
        campaigns.run_pause,
        M,
        "Stop a running campaign sending.",
        "campaign pause SLUG",
        changes=True,
    ),
    CommandSpec(
        "campaign resume",
        campaigns.action_parser("resume"),
        campaigns.run_resume,
        M,
        "Let a paused campaign send again.",
        "campaign resume SLUG",
        changes=True,
    ),
    CommandSpec(
        "campaign cancel",
        campaigns.action_parser("cancel"),
        campaigns.run_cancel,
        M,
        "Cancel a campaign and drop its planned messages (asks to confirm).",
        "campaign cancel SLUG",
        changes=True,
    ),
    CommandSpec(
        "rule list",
        rules.parse_list,
        rules.run_list,
        V,
        "The automated notification rules and whether each is on.",
        "rule list",
    ),
    CommandSpec(
        "rule enable",
        rules.parse_enable,
        rules.run_switch,
        M,
        "Switch a notification rule on for new events.",
        rules.ENABLE_USAGE,
        ("rule enable appointment_reminder_24h",),
        changes=True,
    ),
    CommandSpec(
        "rule disable",
        rules.parse_disable,
        rules.run_switch,
        M,
        "Switch a notification rule off; messages it already planned still go out.",
        rules.DISABLE_USAGE,
        ("rule disable csat_after_visit",),
        changes=True,
    ),
    CommandSpec(
        "customer find",
        customers.parse_find,
        customers.run_find,
        V,
        "Find customers by name, email, phone or #id (contact details masked).",
        customers.FIND_USAGE,
    ),
    CommandSpec(
        "customer show",
        customers.parse_show,
        customers.run_show,
        V,
        "One customer; `--full` shows contact details (agents and up, private).",
        customers.SHOW_USAGE,
        role_for=customers.show_role,
    ),
    CommandSpec(
        "customer prefs",
        customers.parse_prefs,
        customers.run_prefs,
        V,
        "Consent per channel with source and date, and why the last message was not sent.",
        customers.PREFS_USAGE,
    ),
    CommandSpec(
        "chat list",
        chats.parse_list,
        chats.run_list,
        V,
        "Live-chat conversations: yours (the default), unassigned, all open, snoozed or resolved.",
        chats.LIST_USAGE,
        ("chat list", "chat list unassigned"),
    ),
    CommandSpec(
        "chat open",
        chats.parse_open,
        chats.run_open,
        A,
        "Start a conversation with a customer (their preferred or last-used channel unless you name one).",
        chats.OPEN_USAGE,
        ("chat open #12", "chat open jane@example.com on whatsapp"),
        changes=True,
    ),
    CommandSpec(
        "chat assign",
        chats.parse_assign,
        chats.run_assign,
        A,
        "Take a conversation, or give it to another agent.",
        chats.ASSIGN_USAGE,
        ("chat assign 12", "chat assign 12 to lena.hoffmann@northwind.example"),
        changes=True,
    ),
    CommandSpec(
        "chat snooze",
        chats.parse_snooze,
        chats.run_snooze,
        A,
        "Set a conversation aside until a time; the customer writing brings it back sooner.",
        chats.SNOOZE_USAGE,
        ("chat snooze 12 for 2h", "chat snooze 12 until tomorrow"),
        changes=True,
    ),
    CommandSpec(
        "chat resolve",
        chats.parse_resolve,
        chats.run_resolve,
        A,
        "Mark a conversation resolved (the customer writing within a week reopens it).",
        chats.RESOLVE_USAGE,
        ("chat resolve 12",),
        changes=True,
    ),
    CommandSpec(
        "chat reopen",
        chats.parse_reopen,
        chats.run_reopen,
        A,
        "Open a resolved or snoozed conversation again.",
        chats.REOPEN_USAGE,
        ("chat reopen 12",),
        changes=True,
    ),
    CommandSpec(
        "away",
        chats.parse_away,
        chats.run_availability,
        A,
        "Take no new conversations until you say `back`.",
        "away",
        changes=True,
    ),
    CommandSpec(
        "back",
        chats.parse_back,
        chats.run_availability,
        A,
        "Take new conversations again.",
        "back",
        changes=True,
    ),
    CommandSpec(
        "canned",
        canned.parse_canned,
        canned.run_canned,
        V,
        "Canned replies: list, search by shortcut or title, or fill one for a conversation.",
        canned.USAGE,
        ("canned", "canned resch", "canned hours for 12"),
    ),
    CommandSpec(
        "video book",
        video.parse_book,
        video.run_book,
        A,
        "Book a video consultation; the time is the clinician's, the reply gives the patient's too.",
        video.BOOK_USAGE,
        (
            "video book Anna Berg skin video with Dr Lee at tomorrow 10:30",
            "video book #12 NUTRI-VIDEO with me at mon 9:00",
        ),
        changes=True,
    ),
    CommandSpec(
        "video slots",
        video.parse_slots,
        video.run_slots,
        V,
        "A clinician's free video consultation times (next two weeks, or one day).",
        video.SLOTS_USAGE,
        ("video slots Dr Lee", "video slots mine nutrition on friday"),
    ),
    CommandSpec(
        "video reschedule",
        video.parse_reschedule,
        video.run_reschedule,
        A,
        "Move a video consultation to another time (same link; the patient is told).",
        video.RESCHEDULE_USAGE,
        ("video reschedule 12 to thu 14:30",),
        changes=True,
    ),
    CommandSpec(
        "video cancel",
        video.parse_cancel,
        video.run_cancel,
        A,
        "Cancel a video consultation; its time is free again and the patient is told.",
        video.CANCEL_USAGE,
        ("video cancel 12",),
        changes=True,
    ),
    CommandSpec(
        "video list",
        video.parse_list,
        video.run_list,
        V,
        "The video consultations of a day or a week (today, tomorrow, this or next week) per clinician, with "
        "their status.",
        video.LIST_USAGE,
        ("video list", "video list next week mine", "video list tomorrow Lena Hoffmann"),
    ),
    CommandSpec(
        "noshow",
        no_shows.parse_noshow,
        no_shows.run_noshow,
        A,
        "Mark an appointment (video or in person) that has begun as a no-show; a video patient is offered new times.",
        no_shows.NOSHOW_USAGE,
        ("noshow 1234",),
        changes=True,
    ),
    CommandSpec(
        "attended",
        no_shows.parse_attended,
        no_shows.run_attended,
        A,
        "Mark an appointment as attended, e.g. to correct a wrong no-show.",
        no_shows.ATTENDED_USAGE,
        ("attended 1234",),
        changes=True,
    ),
    CommandSpec(
        "video rebook",
        no_shows.parse_rebook,
        no_shows.run_rebook,
        A,
        "Offer the patient of a consultation the clinician's next free times; their letter books one.",
        no_shows.REBOOK_USAGE,
        ("video rebook 12",),
        changes=True,
    ),
    CommandSpec(
        "video reminders",
        no_shows.parse_reminders,
        no_shows.run_reminders,
        V,
        "A consultation's reminder log: each reminder, its channel and what became of it.",
        no_shows.REMINDERS_USAGE,
        ("video reminders 12",),
    ),
    CommandSpec(
        "team",
        team.parse_team,
        team.run_team,
        V,
        "Who is on duty on a day, by clinic, with their hours; today also who takes live chat now.",
        team.USAGE,
        ("team", "team tomorrow", "team friday"),
    ),
    CommandSpec(
        "status",
        status.parse_status,
        status.run_status,
        V,
        "Outbox depth, last webhook, workers and the scheduler.",
        "status",
    ),
)

COMMANDS: tuple[CommandSpec[Any], ...] = _ROWS
BY_NAME: dict[str, CommandSpec[Any]] = {spec.name: spec for spec in COMMANDS}
#: What a bare noun means: `campaigns` lists them, `customer jane` finds her.
DEFAULT_VERB = {
    "chat": "list",
    "campaign": "list",
    "template": "list",
    "report": "list",
    "rule": "list",
    "customer": "find",
    "video": "list",
}
NOUNS = sorted({spec.name.split()[0] for spec in COMMANDS})


def verbs_of(noun: str) -> list[str]:
    return [spec.name.split()[1] for spec in COMMANDS if spec.name.startswith(noun + " ")]
