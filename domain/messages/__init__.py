"""Outbound message arithmetic: how an SMS is encoded and split, and what a message costs to send."""
