"""Twilio Programmable SMS: the SMS driver, its signed status and inbound webhooks."""
