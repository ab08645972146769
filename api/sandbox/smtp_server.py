"""The sandbox's SMTP server: an aiosmtpd handler that keeps what it receives and bounces on request."""

from __future__ import annotations

import asyncio
import time
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any

from api.sandbox.state import SandboxState, StoredEmail
from api.sandbox.webhooks import WebhookDelivery, WebhookDispatcher

PROVIDER = "smtp"


class SandboxSmtpHandler:
    """aiosmtpd handler; runs on the Controller's own thread, so it only touches locked state."""

    def __init__(self, state: SandboxState, webhooks: WebhookDispatcher) -> None:
        self.state = state
        self.webhooks = webhooks

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
        if first_copy and self.state.config.send_status_webhooks and self.state.should_fail():
            # Real relays accept first and bounce later, to the envelope sender's mailbox.
            bounce = bounce_report(stored, self.state.config.email_domain)
            self.webhooks.submit_threadsafe(
                WebhookDelivery(
                    PROVIDER,
                    self.state.config.webhook_url(self.state.config.email_inbound_path),
                    bounce,
                    self.state.config.email_webhook_headers(),
                    "bounce",
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
    recipient = original.rcpt_tos[0] if original.rcpt_tos else parseaddr(original.headers.get("To", ""))[1]
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = f"Mail Delivery System <MAILER-DAEMON@{domain}>"
    report["To"] = original.mail_from
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Date"] = formatdate(localtime=False)
    report["Message-ID"] = make_msgid(domain=domain)
    report.attach(MIMEText(f"Your message to <{recipient}> could not be delivered.\n", "plain"))
    per_message = Message()
    per_message["Reporting-MTA"] = f"dns; mx.{domain}"
    per_message["Original-Message-ID"] = original.message_id
    per_recipient = Message()
    per_recipient["Final-Recipient"] = f"rfc822; {recipient}"
    per_recipient["Action"] = "failed"
    per_recipient["Status"] = "5.1.1"
    per_recipient["Diagnostic-Code"] = (
        "smtp; 550 5.1.1 The email account that you tried to reach does not exist"
    )
    status = Message()
    status.set_type("message/delivery-status")
    status.set_payload([per_message, per_recipient])
    report.attach(status)
    header_text = "".join(f"{name}: {value}\n" for name, value in original.headers.items())
    report.attach(MIMEText(header_text, "rfc822-headers"))
    return report.as_bytes()
