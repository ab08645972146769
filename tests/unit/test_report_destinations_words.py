"""What a scheduled report's email failure says, and whether sending again could help."""

from __future__ import annotations

import aiosmtplib

from reports.destinations import smtp_said


def test_only_an_address_refused_for_good_is_permanent() -> None:
    """A wrong password or a busy relay must not fail every due report at once (the review)."""
    refused = aiosmtplib.SMTPRecipientsRefused(
        [
            aiosmtplib.SMTPRecipientRefused(
                550, "5.1.1 <g@b.example>: Recipient address rejected: User unknown", "g@b.example"
            )
        ]
    )
    assert smtp_said(refused) == (
        "the mail server refused it: Recipient address rejected: User unknown (5.1.1)",
        True,
    )
    for passing in (
        aiosmtplib.SMTPAuthenticationError(535, "5.7.8 Authentication credentials invalid"),
        aiosmtplib.SMTPResponseException(530, "5.7.0 Must issue a STARTTLS command first"),
        aiosmtplib.SMTPConnectResponseError(554, "too many connections"),
        aiosmtplib.SMTPRecipientsRefused(
            [aiosmtplib.SMTPRecipientRefused(451, "4.2.0 try later", "g@b.example")]
        ),
    ):
        words, permanent = smtp_said(passing)
        assert not permanent and words.startswith("the mail server refused it: "), words
    assert smtp_said(TimeoutError()) == ("the mail server did not answer in time", False)
