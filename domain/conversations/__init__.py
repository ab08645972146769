"""Conversations with customers: inbound messages, keywords, replies, and the webhook inbox they arrive through."""
