"""The sandbox's SMTP server: keeps what it receives, bounces on request, and reports delivery when asked.

Like Postfix, it offers DSN (RFC 3461): a client may ask with NOTIFY=SUCCESS for a report once a message is
delivered, and NOTIFY=NEVER for no report at all. Reports go, as a real relay's do, to the envelope sender's
mailbox, which here is Switchboard's inbound-mail webhook.
"""

from __future__ import annotations

import asyncio
import re
import time
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from api.sandbox.state import SandboxState, StoredEmail
from api.sandbox.webhooks import WebhookDelivery, WebhookDispatcher

PROVIDER = "smtp"


#: The RFC 3461 parameters the sandbox reads; aiosmtpd itself refuses any it does not know (555).
_DSN_PARAMETER = re.compile(r"\s+(NOTIFY|ORCPT|RET|ENVID)=(\S+)", re.IGNORECASE)


def _take_dsn_parameters(arg: str | None) -> tuple[str | None, dict[str, str]]:
    if arg is None:
        return None, {}
    found = {name.upper(): value.upper() for name, value in _DSN_PARAMETER.findall(arg)}
    return _DSN_PARAMETER.sub("", arg), found


class DsnSmtp(SMTP):
    """aiosmtpd's SMTP session, which also takes DSN's MAIL and RCPT parameters."""

    #: NOTIFY of the RCPT being handled, for the handler's RCPT hook to keep with the recipient.
    pending_notify: str | None = None

    async def smtp_MAIL(self, arg: str | None) -> None:
        stripped, _ = _take_dsn_parameters(arg)  # RET and ENVID: reports always carry the headers
        await super().smtp_MAIL(stripped)

    async def smtp_RCPT(self, arg: str | None) -> None:
        stripped, found = _take_dsn_parameters(arg)
        self.pending_notify = found.get("NOTIFY")
        try:
            await super().smtp_RCPT(stripped)
        finally:
            self.pending_notify = None


class DsnController(Controller):
    """aiosmtpd's threaded controller, serving DsnSmtp sessions."""

    def factory(self) -> SMTP:
        return DsnSmtp(self.handler, **self.SMTP_kwargs)


def _wants(notify: str | None, kind: str) -> bool:
    """Whether a recipient's NOTIFY asks for a report of `kind` (SUCCESS or FAILURE); none asked is FAILURE."""
    asked = set((notify or "FAILURE,DELAY").split(","))
    return "NEVER" not in asked and kind in asked


class SandboxSmtpHandler:
    """aiosmtpd handler; runs on the Controller's own thread, so it only touches locked state."""

    def __init__(self, state: SandboxState, webhooks: WebhookDispatcher) -> None:
        self.state = state
        self.webhooks = webhooks

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-DSN", responses[-1]]

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if self.state.is_opted_out(address):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        fault = self.state.draw_fault(PROVIDER)
        if fault == "429":
            self.state.count("injected_errors", PROVIDER)
            return "421 4.7.0 Too many messages, try again later"
        if fault in ("500", "503"):
            self.state.count("injected_errors", PROVIDER)
            return "451 4.3.0 Local error in processing"
        if fault == "timeout":
            # Like a relay that queues the message and then never answers: DATA is kept, the 250
            # comes too late for the client, which cannot tell whether the mail went out.
            envelope.sandbox_hang = True
        envelope.rcpt_tos.append(address)
        if not hasattr(envelope, "dsn_notify"):
            envelope.dsn_notify = {}
        envelope.dsn_notify[address] = getattr(server, "pending_notify", None)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = bytes(envelope.original_content or envelope.content)
        email = message_from_bytes(raw, policy=policy.default)
        assert isinstance(email, EmailMessage)
        message_id = str(email.get("Message-ID") or make_msgid(domain="sandbox.invalid"))
        text_part = email.get_body(preferencelist=("plain",))
        html_part = email.get_body(preferencelist=("html",))
        stored = StoredEmail(
            message_id=message_id,
            mail_from=str(envelope.mail_from),
            rcpt_tos=list(envelope.rcpt_tos),
            subject=str(email.get("Subject", "")),
            text=str(text_part.get_content()) if text_part is not None else "",
            html=str(html_part.get_content()) if html_part is not None else None,
            headers={name: str(value) for name, value in email.items()},
            raw=raw,
        )
        first_copy = self.state.store_email(stored)
        if first_copy and self.state.config.send_status_webhooks:
            # Real relays accept first and report later, to the envelope sender's mailbox.
            recipient = stored.rcpt_tos[0] if stored.rcpt_tos else ""
            notify = getattr(envelope, "dsn_notify", {}).get(recipient)
            report: tuple[bytes, str] | None = None
            if self.state.should_fail():
                stored.report = "bounced (5.1.1)"
                if _wants(notify, "FAILURE"):
                    report = bounce_report(stored, self.state.config.email_domain), "bounce"
            elif _wants(notify, "SUCCESS"):
                stored.report = "delivered"
                report = success_report(stored, self.state.config.email_domain), "delivery report"
            if report is not None:
                self.webhooks.submit_threadsafe(
                    WebhookDelivery(
                        PROVIDER,
                        self.state.config.webhook_url(self.state.config.email_inbound_path),
                        report[0],
                        self.state.config.email_webhook_headers(),
                        report[1],
                    )
                )
        if getattr(envelope, "sandbox_hang", False):
            self.state.count("injected_errors", PROVIDER)
            # This runs on the Controller's loop, not the web app's, so it cannot wait on the
            # app's closing event; Controller.stop cancels it.
            await asyncio.sleep(self.state.config.chaos.hang_seconds)
        return f"250 2.0.0 Ok: queued as {int(time.time() * 1000):X}"


def bounce_report(original: StoredEmail, domain: str) -> bytes:
    """An RFC 3464 delivery status notification for a hard bounce of `original`."""
    return _status_report(
        original,
        domain,
        subject="Undelivered Mail Returned to Sender",
        words="Your message to <{recipient}> could not be delivered.\n",
        action="failed",
        status="5.1.1",
        diagnostic="smtp; 550 5.1.1 The email account that you tried to reach does not exist",
    )


def success_report(original: StoredEmail, domain: str) -> bytes:
    """An RFC 3464 delivery status notification saying `original` was delivered (asked for with NOTIFY)."""
    return _status_report(
        original,
        domain,
        subject="Successful Mail Delivery Report",
        words="Your message to <{recipient}> was delivered to the destination mail server.\n",
        action="delivered",
        status="2.0.0",
        diagnostic="smtp; 250 2.0.0 Ok: queued",
    )


def _status_report(
    original: StoredEmail, domain: str, *, subject: str, words: str, action: str, status: str, diagnostic: str
) -> bytes:
    recipient = original.rcpt_tos[0] if original.rcpt_tos else parseaddr(original.headers.get("To", ""))[1]
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = f"Mail Delivery System <MAILER-DAEMON@{domain}>"
    report["To"] = original.mail_from
    report["Subject"] = subject
    report["Date"] = formatdate(localtime=False)
    report["Message-ID"] = make_msgid(domain=domain)
    report["Auto-Submitted"] = "auto-replied"
    report.attach(MIMEText(words.format(recipient=recipient), "plain"))
    per_message = Message()
    per_message["Reporting-MTA"] = f"dns; mx.{domain}"
    per_message["Original-Message-ID"] = original.message_id
    per_recipient = Message()
    per_recipient["Final-Recipient"] = f"rfc822; {recipient}"
    per_recipient["Action"] = action
    per_recipient["Status"] = status
    per_recipient["Diagnostic-Code"] = diagnostic
    delivery_status = Message()
    delivery_status.set_type("message/delivery-status")
    delivery_status.set_payload([per_message, per_recipient])
    report.attach(delivery_status)
    header_text = "".join(f"{name}: {value}\n" for name, value in original.headers.items())
    report.attach(MIMEText(header_text, "rfc822-headers"))
    return report.as_bytes()
