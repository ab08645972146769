"""Email over SMTP: the relay client, the email driver, inbound replies and bounces."""
