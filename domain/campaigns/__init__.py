"""Campaigns: who a bulk message goes to, on which channel, and how planning it into the outbox proceeds."""
